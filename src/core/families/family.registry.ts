import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { InvalidBindingError } from '../errors';
import type { EventFamily, FamilyBinding } from './event-family';
import { EventFamilyProvider } from './event-family.decorator';

export interface RegisteredFamily {
  readonly prefix: string;
  readonly family: EventFamily;
}

const PREFIX = /^[a-z][a-z0-9_]*$/;

/** Raised at boot when two families claim the same prefix or a prefix is malformed. */
export class FamilyRegistrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FamilyRegistrationError';
  }
}

/** All event families of the application, found once at bootstrap by their decorator. */
@Injectable()
export class FamilyRegistry implements OnModuleInit {
  private readonly logger = new Logger(FamilyRegistry.name);
  private readonly byPrefix = new Map<string, RegisteredFamily>();
  private readonly prefixes = new Map<EventFamily, string>();

  constructor(private readonly discovery: DiscoveryService) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders({ metadataKey: EventFamilyProvider.KEY })) {
      const options = this.discovery.getMetadataByDecorator(EventFamilyProvider, wrapper);
      const family = wrapper.instance as EventFamily | undefined;
      if (!options || !family) continue;
      this.register(options.prefix, family, String(wrapper.name));
    }
  }

  register(prefix: string, family: EventFamily, source = family.constructor.name): void {
    if (!PREFIX.test(prefix)) {
      throw new FamilyRegistrationError(
        `${source}: family prefix "${prefix}" is not a lower-case word`,
      );
    }
    const existing = this.byPrefix.get(prefix);
    if (existing) {
      throw new FamilyRegistrationError(
        `${source}: family prefix "${prefix}" is already registered by ${existing.family.constructor.name}`,
      );
    }
    this.byPrefix.set(prefix, { prefix, family });
    this.prefixes.set(family, prefix);
    this.logger.log(`${source} -> ${prefix}.*`);
  }

  prefixOf(family: EventFamily): string {
    const prefix = this.prefixes.get(family);
    if (prefix === undefined) {
      throw new FamilyRegistrationError(`${family.constructor.name} is not a registered family`);
    }
    return prefix;
  }

  all(): RegisteredFamily[] {
    return [...this.byPrefix.values()];
  }

  /** Finds the family owning `binding` and lets it parse the binding. */
  parse(binding: string): { prefix: string; parsed: FamilyBinding } {
    const prefix = binding.split('.', 1)[0];
    const entry = this.byPrefix.get(prefix);
    if (!entry) {
      throw new InvalidBindingError(`no available subscriptions to requested binding ${binding}`);
    }
    return { prefix, parsed: entry.family.parseBinding(binding) };
  }
}
