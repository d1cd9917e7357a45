import { isMissingExchange, refusalOf } from './broker-errors';

describe('refusalOf', () => {
  it("reads the broker's code and words from the operation that caused a channel close", () => {
    const error = Object.assign(
      new Error(
        `Operation failed: QueueBind; 404 (NOT-FOUND) with message "NOT_FOUND - no exchange 'callevt' in vhost '/'"`,
      ),
      { code: 404 },
    );
    const refusal = refusalOf(error);
    expect(refusal).toEqual({
      code: 404,
      reason: "NOT_FOUND - no exchange 'callevt' in vhost '/'",
    });
    expect(isMissingExchange(refusal!, 'callevt')).toBe(true);
    expect(isMissingExchange(refusal!, 'presence')).toBe(false);
  });

  it('is no refusal when the channel only ended under the operation', () => {
    expect(refusalOf(new Error('Channel ended, no reply will be forthcoming'))).toBeUndefined();
    expect(
      refusalOf(Object.assign(new Error('Channel closed by server: 406 (X)'), { code: 406 })),
    ).toBeUndefined();
  });
});
