import { ALL_ACCOUNTS, InvalidBindingError } from '../../core';
import { SkeletonFamily } from './skeleton.family';

const ACCOUNT = '4b8c6fec4b2597882c0390202d195419';
const context = {
  accountId: ACCOUNT,
  now: new Date('2026-11-26T00:00:00Z'),
  realm: () => Promise.reject(new Error('not needed')),
};

describe('SkeletonFamily', () => {
  // Families are plain classes: no Nest needed to test them.
  const family = new SkeletonFamily();

  it.each([
    [
      'skeleton.created.*',
      'skeleton.created.*.*',
      'skeleton.created.4b8c6fec4b2597882c0390202d195419.*',
    ],
    ['skeleton.*.*', 'skeleton.*.*.*', 'skeleton.*.4b8c6fec4b2597882c0390202d195419.*'],
    [
      'skeleton.deleted.a.b@c',
      'skeleton.deleted.*.a%2Eb%40c',
      'skeleton.deleted.4b8c6fec4b2597882c0390202d195419.*',
    ],
  ])('%s -> pattern %s, broker key %s', (binding, pattern, routingKey) => {
    const parsed = family.parseBinding(binding);
    expect(parsed.pattern).toBe(pattern);
    expect(family.brokerKeys(parsed, context)).toEqual([{ exchange: 'skeleton', routingKey }]);
  });

  it.each([
    ['skeleton', 'invalid format for skeleton subscription : '],
    ['skeleton.created', 'invalid format for skeleton subscription : created'],
    ['skeleton.#', 'invalid format for skeleton subscription : #'],
    ['skeleton.created.#', 'invalid format for skeleton subscription : created, #'],
    // A wildcard is a whole id or nothing: these would bind keys and match no event.
    ['skeleton.created.*.*', 'invalid format for skeleton subscription : created, *, *'],
    ['skeleton.*.abc.*', 'invalid format for skeleton subscription : *, abc, *'],
    ['skeleton.created.ab*c', 'invalid format for skeleton subscription : created, ab*c'],
    ['skeleton.exploded.*', 'event exploded not supported'],
    ['skeleton.creat*.*', 'event creat* not supported'],
  ])('refuses %s', (binding, message) => {
    expect(() => family.parseBinding(binding)).toThrow(new InvalidBindingError(message));
  });

  it("binds every account's key for a superduper admin's ALL_ACCOUNTS", () => {
    const everyAccount = { ...context, accountId: ALL_ACCOUNTS };
    expect(family.brokerKeys(family.parseBinding('skeleton.created.*'), everyAccount)).toEqual([
      { exchange: 'skeleton', routingKey: 'skeleton.created.*.*' },
    ]);
    expect(family.brokerKeys(family.parseBinding('skeleton.*.*'), everyAccount)).toEqual([
      { exchange: 'skeleton', routingKey: 'skeleton.*.*.*' },
    ]);
  });

  it('never puts anything but an account id into a key', () => {
    expect(() =>
      family.brokerKeys(family.parseBinding('skeleton.created.*'), { ...context, accountId: '#' }),
    ).toThrow('invalid account id');
  });

  it('describes a message by its Event-Name and Account-ID', () => {
    const message = { 'Event-Name': 'updated', 'Account-ID': ACCOUNT, ID: 'x' };
    expect(
      family.describe(message, { exchange: 'skeleton', routingKey: 'skeleton.updated.a.x' }),
    ).toEqual({
      accountId: ACCOUNT,
      key: 'skeleton.updated.a.x',
      name: 'updated',
      payload: message,
    });
  });

  it('leaves the account undefined when the message has none, and ignores unknown events', () => {
    const delivery = { exchange: 'skeleton', routingKey: 'skeleton.updated.a.x' };
    expect(family.describe({ 'Event-Name': 'updated' }, delivery)?.accountId).toBeUndefined();
    expect(
      family.describe({ 'Event-Name': 'exploded', 'Account-ID': ACCOUNT }, delivery),
    ).toBeUndefined();
  });
});
