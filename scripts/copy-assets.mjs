// tsc copies only .ts output; the codec and migrator read these files at run time.
import { cpSync } from 'node:fs';
cpSync('src/protocol/bikeshare.proto', 'dist/protocol/bikeshare.proto');
cpSync('src/stores/migrations', 'dist/stores/migrations', { recursive: true });
