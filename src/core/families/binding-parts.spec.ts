import { InvalidBindingError } from '../errors';
import { wordAndId } from './binding-parts';

describe('wordAndId', () => {
  it.each([
    ['call.CHANNEL_CREATE.*', { word: 'CHANNEL_CREATE', id: '*' }],
    ['call.*.abc@10.0.0.1', { word: '*', id: 'abc%4010%2E0%2E0%2E1' }],
    ['call.*.abc%4010%2E0%2E0%2E1', { word: '*', id: 'abc%4010%2E0%2E0%2E1' }],
    ['presence.mwi_updates.alice smith', { word: 'mwi_updates', id: 'alice+smith' }],
  ])('%s', (binding, parts) => {
    expect(wordAndId('call', binding)).toEqual(parts);
  });

  it.each([
    ['call', 'invalid format for call subscription : '],
    ['call.', 'invalid format for call subscription : '],
    ['call.CHANNEL_CREATE', 'invalid format for call subscription : CHANNEL_CREATE'],
    ['call.CHANNEL_CREATE.', 'invalid format for call subscription : CHANNEL_CREATE, '],
    ['call.#', 'invalid format for call subscription : #'],
    ['call.CHANNEL_CREATE.#', 'invalid format for call subscription : CHANNEL_CREATE, #'],
    ['call..x', 'invalid format for call subscription : , x'],
  ])('refuses %j', (binding, message) => {
    expect(() => wordAndId('call', binding)).toThrow(InvalidBindingError);
    expect(() => wordAndId('call', binding)).toThrow(message);
  });
});
