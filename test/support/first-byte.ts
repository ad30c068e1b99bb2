/** A GET whose body is kept as text (and parsed when it is JSON), with the moment its first byte arrived. */
import request from 'supertest';

type App = Parameters<typeof request>[0];

export async function getWithFirstByte(app: App, path: string): Promise<{ res: request.Response; firstByteAt: number }> {
  let firstByteAt = 0;
  const res = await request(app)
    .get(path)
    .buffer(true)
    .parse((r, cb) => {
      let text = '';
      r.on('data', (c: Buffer) => {
        if (firstByteAt === 0) firstByteAt = Date.now();
        text += c.toString();
      });
      r.on('end', () => cb(null, text));
    })
    .on('response', () => {
      if (firstByteAt === 0) firstByteAt = Date.now();
    });
  (res as { text: string }).text = res.body as string;
  try {
    res.body = JSON.parse(res.body as string);
  } catch {
    /* not JSON */
  }
  return { res, firstByteAt };
}
