// The socket module's constants (Linux values), as Python's `socket`
// module has them. Public through sockets.ts.

/** Unspecified address family (Linux value 0). */
export const AF_UNSPEC = 0;
/** Unix domain sockets (Linux value 1). */
export const AF_UNIX = 1;
/** IPv4 (Linux value 2). */
export const AF_INET = 2;
/** IPv6 (Linux value 10). */
export const AF_INET6 = 10;
/** Stream sockets: TCP, or Unix stream (Linux value 1). */
export const SOCK_STREAM = 1;
/** Datagram sockets: UDP, or Unix datagrams (Linux value 2). */
export const SOCK_DGRAM = 2;
/** Socket-level options (Linux value 1). */
export const SOL_SOCKET = 1;
/** IPv4-level options (Linux value 0). */
export const IPPROTO_IP = 0;
/** IPv6-level options (Linux value 41). */
export const IPPROTO_IPV6 = 41;
/** TCP-level options, and the TCP protocol number (Linux value 6). */
export const IPPROTO_TCP = 6;
/** The UDP protocol number (Linux value 17). */
export const IPPROTO_UDP = 17;
/** `IPPROTO_TCP` option: disable Nagle's algorithm (Linux value 1). */
export const TCP_NODELAY = 1;
/** `SOL_SOCKET` option: reuse a local address (Linux value 2). */
export const SO_REUSEADDR = 2;
/** `SOL_SOCKET` option: pending error, read and cleared (Linux value 4). */
export const SO_ERROR = 4;
/** `SOL_SOCKET` option: allow broadcast datagrams (Linux value 6). */
export const SO_BROADCAST = 6;
/** `SOL_SOCKET` option: send buffer size in bytes (Linux value 7). */
export const SO_SNDBUF = 7;
/** `SOL_SOCKET` option: receive buffer size in bytes (Linux value 8). */
export const SO_RCVBUF = 8;
/** `SOL_SOCKET` option: TCP keep-alive probes (Linux value 9). */
export const SO_KEEPALIVE = 9;
/** `SOL_SOCKET` option: several sockets on one port (Linux value 15). */
export const SO_REUSEPORT = 15;
/** `IPPROTO_IP` option: multicast time-to-live (Linux value 33). */
export const IP_MULTICAST_TTL = 33;
/** `IPPROTO_IP` option: loop multicast back to this host (Linux value 34). */
export const IP_MULTICAST_LOOP = 34;
/** `IPPROTO_IP` option: join a multicast group, value `ip_mreq` bytes (35). */
export const IP_ADD_MEMBERSHIP = 35;
/** `IPPROTO_IP` option: leave a multicast group, value `ip_mreq` bytes (36). */
export const IP_DROP_MEMBERSHIP = 36;
/** The IPv4 wildcard address as a number (0). */
export const INADDR_ANY = 0;
/** `shutdown()`: no more receives (0). */
export const SHUT_RD = 0;
/** `shutdown()`: no more sends, FIN after the send buffer (1). */
export const SHUT_WR = 1;
/** `shutdown()`: both (2). */
export const SHUT_RDWR = 2;
/** The largest `listen()` backlog Linux accepts by default (4096). */
export const SOMAXCONN = 4096;
