import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsOptional,
  IsString,
  MaxLength,
  ValidateIf,
} from 'class-validator';

/**
 * Optional, but when present it must pass the checks: unlike `@IsOptional()`, `null` is not
 * "absent" (`{"auth_token": null}` is a wrong type, answered as such).
 */
const Omittable = (): PropertyDecorator =>
  ValidateIf((_request: unknown, value: unknown) => value !== undefined);

/** Most bindings one `subscribe` may carry. */
export const MAX_BINDINGS_PER_REQUEST = 100;

/**
 * `subscribe` / `unsubscribe` payload of the 3.x event protocol (design §1.1). class-validator
 * runs decorators bottom-up and the gateway stops at the first failure, so type checks sit last.
 */
export class EventRequestDto {
  @Omittable()
  @MaxLength(8192)
  @IsString()
  auth_token?: string;

  @Omittable()
  @MaxLength(64)
  @IsString()
  account_id?: string;

  @Omittable()
  @MaxLength(1024)
  @IsString()
  binding?: string;

  @Omittable()
  @MaxLength(1024, { each: true })
  @IsString({ each: true })
  @ArrayMaxSize(MAX_BINDINGS_PER_REQUEST)
  @ArrayMinSize(1)
  @IsArray()
  bindings?: string[];

  /** `resume` only: the last position the client saw (read by `ReplayService`). */
  @IsOptional()
  position?: unknown;

  @IsOptional()
  name?: unknown;

  @IsOptional()
  metadata?: unknown;
}
