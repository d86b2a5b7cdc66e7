// The `bikeshare` command: `serve` (what npm start runs) and the operator and
// client tools. Config is loaded once here and passed down.
import cluster from 'node:cluster';
import { loadConfig, ConfigError } from './config/config.js';

const USAGE = `usage: bikeshare <command> [options]

  serve                     run the service (primary + one worker per core)
  migrate                   create/upgrade the database schema and exit
  config [--markdown]       print the effective configuration (or the option table)
  bikes seed --count N --lat LAT --lng LNG --radius-m R
  bikes set-status --id ID --status available|out_of_service
  audit                     check the ledger and ride invariants; exit 1 on a violation
  call <message> [--flags]  send one request (see 'bikeshare call --help')
  demo                      walk through the whole product against a running server
  bench --scenario S ...    load generator (see 'bikeshare bench --help')

Configuration: BIKE_CONFIG=<file.json> and BIKE_* environment variables (docs/configuration.md).
Client commands take --host (127.0.0.1) and --port (BIKE_PORT or 7000), --tls, --ca FILE.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const config = loadConfig();
      if (cluster.isPrimary) {
        const { runPrimary } = await import('./cluster/primary.js');
        await runPrimary(config);
      } else {
        const { runWorker } = await import('./cluster/worker.js');
        await runWorker(config, cluster.worker!.id);
      }
      return -1; // keep running
    }
    case 'migrate': {
      const { migrate } = await import('./stores/migrate.js');
      const result = await migrate(loadConfig().mysqlUrl);
      console.log(`database ${result.database}: applied ${result.applied.length ? result.applied.join(', ') : 'nothing (up to date)'}`);
      return 0;
    }
    case 'config': {
      const { configCommand } = await import('./cli/config.js');
      return configCommand(rest);
    }
    case 'bikes': {
      const { bikesCommand } = await import('./cli/bikes.js');
      return bikesCommand(rest, loadConfig());
    }
    case 'audit': {
      const { auditCommand } = await import('./cli/audit.js');
      return auditCommand(loadConfig());
    }
    case 'call': {
      const { callCommand } = await import('./cli/call.js');
      return callCommand(rest);
    }
    case 'demo': {
      const { demoCommand } = await import('./cli/demo.js');
      return demoCommand(rest);
    }
    case 'bench': {
      const { benchCommand } = await import('./cli/bench.js');
      return benchCommand(rest);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (err instanceof ConfigError) console.error(err.message);
    else console.error(err);
    process.exit(err instanceof ConfigError ? 78 : 1);
  },
);
