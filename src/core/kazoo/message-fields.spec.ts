import { channelVarsAccountId, textField } from './message-fields';

describe('message fields', () => {
  it.each([
    [{ 'Account-ID': 'abc' }, 'abc'],
    [{ 'Account-ID': '' }, undefined],
    [{ 'Account-ID': 42 }, undefined],
    [{ 'Account-ID': null }, undefined],
    [{}, undefined],
  ])('textField(%j) = %j', (message, expected) => {
    expect(textField(message, 'Account-ID')).toBe(expected);
  });

  it.each([
    [{ 'Custom-Channel-Vars': { 'Account-ID': 'abc' } }, 'abc'],
    [{ 'Custom-Channel-Vars': { 'Account-ID': '' } }, undefined],
    [{ 'Custom-Channel-Vars': ['Account-ID'] }, undefined],
    [{ 'Custom-Channel-Vars': 'Account-ID' }, undefined],
    [{ 'Account-ID': 'top-level only' }, undefined],
  ])('channelVarsAccountId(%j) = %j', (message, expected) => {
    expect(channelVarsAccountId(message)).toBe(expected);
  });
});
