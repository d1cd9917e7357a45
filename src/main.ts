import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { InvalidEnvironmentError, loadEnvironment } from './config/environment';
import { startGateway } from './bootstrap';

async function main(): Promise<void> {
  let environment;
  try {
    environment = loadEnvironment(process.env);
  } catch (error) {
    if (error instanceof InvalidEnvironmentError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const app = await startGateway(environment);
  new Logger('Blackhole').log(`listening on ${await app.getUrl()}`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `Blackhole failed to start: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});
