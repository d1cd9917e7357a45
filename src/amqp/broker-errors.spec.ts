import { describeConnectFailure, isMissingExchange, refusalOf } from './broker-errors';

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

describe('describeConnectFailure', () => {
  it('tells an unreachable broker from a refused login and a refused vhost', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5999'), {
      code: 'ECONNREFUSED',
    });
    expect(describeConnectFailure(refused)).toMatch(/^unreachable: connection refused/);
    const unknownHost = Object.assign(new Error('getaddrinfo ENOTFOUND mq'), { code: 'ENOTFOUND' });
    expect(describeConnectFailure(unknownHost)).toMatch(/^unreachable: host name not resolved/);
    const login = new Error(
      'Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"',
    );
    expect(describeConnectFailure(login)).toMatch(/^authentication failed/);
    const vhost = new Error(
      'Handshake terminated by server: 530 (NOT-ALLOWED) with message "NOT_ALLOWED - vhost kazoo not found"',
    );
    expect(describeConnectFailure(vhost)).toMatch(/^refused: the user may not open/);
    expect(describeConnectFailure(new Error('something new'))).toBe('something new');
  });
});
