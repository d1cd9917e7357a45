import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsOptional,
  IsString,
  MaxLength,
} from 'class-validator';

/** Most bindings one `subscribe` may carry. */
export const MAX_BINDINGS_PER_REQUEST = 100;

/** `subscribe` / `unsubscribe` payload of the 3.x event protocol (design §1.1). */
export class EventRequestDto {
  @IsOptional()
  @IsString()
  @MaxLength(8192)
  auth_token?: string;

  @IsOptional()
  @IsString()
  @MaxLength(64)
  account_id?: string;

  @IsOptional()
  @IsString()
  @MaxLength(1024)
  binding?: string;

  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_BINDINGS_PER_REQUEST)
  @IsString({ each: true })
  @MaxLength(1024, { each: true })
  bindings?: string[];

  @IsOptional()
  name?: unknown;

  @IsOptional()
  metadata?: unknown;
}
