// Node.js: the `ws` package's WebSocket (Node 20 has no global one).
export { WebSocket } from 'ws';
