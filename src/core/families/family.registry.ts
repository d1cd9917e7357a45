import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { InvalidBindingError } from '../errors';
import type { EventFamily, EventFamilyOptions, FamilyBinding } from './event-family';
import { EventFamilyProvider } from './event-family.decorator';

export interface RegisteredFamily {
  readonly prefix: string;
  readonly options: EventFamilyOptions;
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
  /** Prefixes and aliases → family. */
  private readonly byWord = new Map<string, RegisteredFamily>();
  private readonly families: RegisteredFamily[] = [];
  private readonly prefixes = new Map<EventFamily, string>();

  constructor(private readonly discovery: DiscoveryService) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders({ metadataKey: EventFamilyProvider.KEY })) {
      const options = this.discovery.getMetadataByDecorator(EventFamilyProvider, wrapper);
      const family = wrapper.instance as EventFamily | undefined;
      if (!options || !family) continue;
      this.register(options, family, String(wrapper.name));
    }
  }

  register(
    options: EventFamilyOptions,
    family: EventFamily,
    source = family.constructor.name,
  ): void {
    const entry: RegisteredFamily = { prefix: options.prefix, options, family };
    const words = [options.prefix, ...(options.aliases ?? [])];
    for (const word of words) {
      if (!PREFIX.test(word)) {
        throw new FamilyRegistrationError(
          `${source}: family prefix "${word}" is not a lower-case word`,
        );
      }
      const existing = this.byWord.get(word);
      if (existing) {
        throw new FamilyRegistrationError(
          `${source}: family prefix "${word}" is already registered by ${existing.family.constructor.name}`,
        );
      }
    }
    words.forEach((word) => this.byWord.set(word, entry));
    this.families.push(entry);
    this.prefixes.set(family, options.prefix);
    this.logger.log(`${source} -> ${words.map((word) => `${word}.*`).join(', ')}`);
  }

  prefixOf(family: EventFamily): string {
    const prefix = this.prefixes.get(family);
    if (prefix === undefined) {
      throw new FamilyRegistrationError(`${family.constructor.name} is not a registered family`);
    }
    return prefix;
  }

  all(): readonly RegisteredFamily[] {
    return this.families;
  }

  get(prefix: string): RegisteredFamily | undefined {
    const entry = this.byWord.get(prefix);
    return entry?.prefix === prefix ? entry : undefined;
  }

  /** Finds the family owning `binding` (by its first word) and lets it parse the binding. */
  parse(binding: string): { entry: RegisteredFamily; parsed: FamilyBinding } {
    const entry = this.byWord.get(binding.split('.', 1)[0]);
    if (!entry) {
      throw new InvalidBindingError(`no available subscriptions to requested binding ${binding}`);
    }
    return { entry, parsed: entry.family.parseBinding(binding) };
  }
}
