// (e) Node.js `net` echo: socket.pipe(socket), TCP_NODELAY on.
import net from "node:net";

const args = process.argv.slice(2);
let host = "127.0.0.1";
let port = NaN;
for (let i = 0; i < args.length; i += 2) {
  if (args[i] === "--host") host = args[i + 1];
  else if (args[i] === "--port") port = Number(args[i + 1]);
  else throw new TypeError(`Unknown argument ${args[i]}`);
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on("error", () => socket.destroy());
  socket.pipe(socket);
});
server.listen({ host, port, backlog: 511 }, () => {
  console.log(`READY ${server.address().port}`);
});
