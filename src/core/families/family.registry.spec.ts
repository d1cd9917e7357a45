import { Injectable } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { InvalidBindingError } from '../errors';
import type { EventFamily, FamilyBinding } from './event-family';
import { EventFamilyProvider } from './event-family.decorator';
import { FamilyRegistrationError, FamilyRegistry } from './family.registry';

/** A family that accepts any binding of its prefix; enough to exercise discovery. */
abstract class PlainFamily implements EventFamily {
  readonly availableBindings: string[] = [];
  parseBinding(binding: string): FamilyBinding {
    return { binding, pattern: binding };
  }
  brokerKeys(): [] {
    return [];
  }
  describe(): undefined {
    return undefined;
  }
}

@Injectable()
@EventFamilyProvider({ prefix: 'alpha', aliases: ['first'] })
class AlphaFamily extends PlainFamily {}

@Injectable()
@EventFamilyProvider({ prefix: 'beta' })
class BetaFamily extends PlainFamily {}

@Injectable()
@EventFamilyProvider({ prefix: 'alpha' })
class AnotherAlphaFamily extends PlainFamily {}

@Injectable()
@EventFamilyProvider({ prefix: 'gamma', aliases: ['first'] })
class AliasClashFamily extends PlainFamily {}

@Injectable()
@EventFamilyProvider({ prefix: 'Bad.Prefix' })
class BadPrefixFamily extends PlainFamily {}

async function boot(...providers: (new () => PlainFamily)[]): Promise<FamilyRegistry> {
  const moduleRef = await Test.createTestingModule({
    imports: [DiscoveryModule],
    providers: [FamilyRegistry, ...providers],
  }).compile();
  await moduleRef.init();
  return moduleRef.get(FamilyRegistry);
}

describe('FamilyRegistry', () => {
  it('discovers decorated providers at boot, with their aliases', async () => {
    const registry = await boot(AlphaFamily, BetaFamily);
    expect(registry.all().map((f) => f.prefix)).toEqual(['alpha', 'beta']);
    expect(registry.parse('first.x.y').entry.prefix).toBe('alpha');
    expect(registry.parse('beta.x').parsed).toEqual({ binding: 'beta.x', pattern: 'beta.x' });
    expect(registry.get('first')).toBeUndefined();
    expect(registry.get('alpha')?.family).toBeInstanceOf(AlphaFamily);
  });

  it('refuses bindings of no family with the Kazoo text', async () => {
    const registry = await boot(AlphaFamily);
    expect(() => registry.parse('weather.today')).toThrow(InvalidBindingError);
    expect(() => registry.parse('weather.today')).toThrow(
      'no available subscriptions to requested binding weather.today',
    );
  });

  it.each([
    [
      'a prefix claimed twice',
      [AlphaFamily, AnotherAlphaFamily],
      /"alpha" is already registered by AlphaFamily/,
    ],
    [
      'an alias claimed twice',
      [AlphaFamily, AliasClashFamily],
      /"first" is already registered by AlphaFamily/,
    ],
    ['a malformed prefix', [BadPrefixFamily], /"Bad.Prefix" is not a lower-case word/],
  ])('stops the boot on %s', async (_label, providers, message) => {
    const failure = boot(...(providers as (new () => PlainFamily)[]));
    await expect(failure).rejects.toThrow(FamilyRegistrationError);
    await expect(boot(...(providers as (new () => PlainFamily)[]))).rejects.toThrow(message);
  });
});
