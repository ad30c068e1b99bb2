/**
 * Type-level checks, compiled by `npm run typecheck` (tsc over test/): SessionData
 * augmentation types get/set, and un-augmented keys are unknown.
 */
import type { Session } from 'latchkey';

declare module 'latchkey' {
  interface SessionData {
    userId: string;
    cart: string[];
  }
}

function typed(s: Session): void {
  const user: string | undefined = s.get('userId');
  const cart: string[] | undefined = s.get('cart');
  s.set('userId', 'ada');
  // @ts-expect-error a number is not a userId
  s.set('userId', 42);
  // @ts-expect-error unknown is not assignable to string
  const other: string | undefined = s.get('somethingElse');
  void [user, cart, other];
}

test('SessionData augmentation compiles (see npm run typecheck)', () => {
  expect(typeof typed).toBe('function');
});
