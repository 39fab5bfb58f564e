// Browsers and workers: the platform's WebSocket.
export const WebSocket = globalThis.WebSocket;
