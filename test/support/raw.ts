/** Sending header bytes that HTTP clients refuse to send (controls, raw UTF-8), as a hostile client would. */
import { createServer, type RequestListener } from 'node:http';
import { connect, type AddressInfo } from 'node:net';

export interface RawResponse {
  status: number;
  headers: string;
  body: string;
}

export async function rawGet(listener: RequestListener, path: string, cookie: Buffer): Promise<RawResponse> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => socket.destroy(new Error('raw request timed out')), 5000);
      socket.on('data', (c) => chunks.push(c));
      socket.on('error', reject);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString('latin1'));
      });
      socket.end(Buffer.concat([Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: `), cookie, Buffer.from('\r\n\r\n')]));
    });
    const [head = '', body = ''] = text.split('\r\n\r\n');
    return { status: Number(head.split(' ')[1]), headers: head, body };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}
