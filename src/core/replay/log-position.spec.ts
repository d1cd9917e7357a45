import { formatPosition, parsePosition } from './log-position';

describe('log positions', () => {
  it('read back what they format, and sort as strings in log order', () => {
    const positions = [0, 9, 10, 99, 100, 123456789].map((offset) =>
      formatPosition('a1b2c3d4e5f60718', offset),
    );
    expect([...positions].sort()).toEqual(positions);
    expect(parsePosition(positions[4])).toEqual({ epoch: 'a1b2c3d4e5f60718', offset: 100 });
  });

  it.each([
    '',
    '42',
    'x-0000000000000001',
    'a1b2c3d4-1',
    'A1B2C3D4-0000000000000001',
    'a'.repeat(65),
  ])('are not read from %j', (text) => expect(parsePosition(text)).toBeUndefined());
});
