import { OriginPolicy } from './origin-policy';

const HOST = 'gateway.example.com:5555';

describe('OriginPolicy', () => {
  describe('* (the default)', () => {
    const policy = new OriginPolicy('*');

    it('serves any page but opaque ones, and programs that send no Origin', () => {
      expect(policy.allows('https://anywhere.example.org', HOST)).toBe(true);
      expect(policy.allows(undefined, HOST)).toBe(true);
      expect(policy.allows('null', HOST)).toBe(false);
    });

    it('answers a wildcard, never a reflected origin', () => {
      expect(policy.allowOrigin('https://anywhere.example.org')).toBe('*');
      expect(policy.allowOrigin(undefined)).toBe('*');
      expect(policy.allowOrigin('null')).toBeUndefined();
      expect(policy.allowsCredentials('https://anywhere.example.org')).toBe(false);
      expect(policy.reflects).toBe(false);
    });
  });

  describe('a list', () => {
    const policy = new OriginPolicy('https://App.example.com:443, http://127.0.0.1:8080');

    it('reflects listed origins only, compared as browsers serialize them', () => {
      expect(policy.allowOrigin('https://app.example.com')).toBe('https://app.example.com');
      expect(policy.allowOrigin('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
      expect(policy.allowOrigin('http://127.0.0.1:8081')).toBeUndefined();
      expect(policy.allowOrigin('https://app.example.com.evil.org')).toBeUndefined();
      expect(policy.allowOrigin('null')).toBeUndefined();
      expect(policy.allowOrigin(undefined)).toBeUndefined();
      expect(policy.reflects).toBe(true);
    });

    it('allows credentials (socket.io 0.9 and 2.x XHRs) to listed origins only', () => {
      expect(policy.allowsCredentials('https://app.example.com')).toBe(true);
      expect(policy.allowsCredentials('https://evil.example.org')).toBe(false);
      expect(policy.allowsCredentials('null')).toBe(false);
      expect(policy.allowsCredentials(undefined)).toBe(false);
    });

    it("serves listed pages, the gateway's own pages and programs, nothing else", () => {
      expect(policy.allows('https://app.example.com', HOST)).toBe(true);
      expect(policy.allows(`http://${HOST}`, HOST)).toBe(true);
      expect(policy.allows(undefined, HOST)).toBe(true);
      expect(policy.allows('https://evil.example.org', HOST)).toBe(false);
      expect(policy.allows('null', HOST)).toBe(false);
      expect(policy.allows('not an origin', HOST)).toBe(false);
    });
  });

  it('lets opaque origins in only when null is listed', () => {
    const policy = new OriginPolicy('*,null');
    expect(policy.allows('null', HOST)).toBe(true);
    expect(policy.allowOrigin('null')).toBe('null');
    expect(policy.allowsCredentials('null')).toBe(false);
    expect(policy.reflects).toBe(true);
    expect(new OriginPolicy('null,https://app.example.com').allowsCredentials('null')).toBe(false);
  });

  it('refuses a setting it cannot read', () => {
    expect(() => new OriginPolicy('https://app.example.com/path')).toThrow(/CORS_ORIGINS/);
  });
});
