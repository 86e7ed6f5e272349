"""(f) CPython asyncio echo servers: Protocol or Streams, on asyncio's own
loop or on uvloop.

    python3 asyncio_echo.py --port N [--host 127.0.0.1]
        [--api protocol|streams] [--loop asyncio|uvloop]

Exits with code 3 when uvloop is asked for and cannot be imported, so the
driver skips the server.
"""

import argparse
import asyncio
import socket
import sys


def set_nodelay(sock):
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        set_nodelay(transport.get_extra_info("socket"))

    def data_received(self, data):
        self.transport.write(data)

    # Flow control: stop reading while the peer does not take the echo.
    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


async def echo_stream(reader, writer):
    set_nodelay(writer.get_extra_info("socket"))
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(args):
    loop = asyncio.get_running_loop()
    if args.api == "protocol":
        server = await loop.create_server(Echo, args.host, args.port)
    else:
        server = await asyncio.start_server(echo_stream, args.host, args.port)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api", choices=["protocol", "streams"], default="protocol")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    if args.loop == "uvloop":
        try:
            import uvloop
        except ImportError as error:
            print(f"uvloop cannot be imported by {sys.executable}: {error}", file=sys.stderr)
            sys.exit(3)
        uvloop.install()
    asyncio.run(main(args))
