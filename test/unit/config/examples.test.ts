// Every config the project ships validates and compiles.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfigFile } from '../../../src/config/load.js';
import { dryCompile } from '../../../src/server/dry-compile.js';

const files = ['config/meshgate.yaml', ...readdirSync('config/examples').filter((f) => f.endsWith('.yaml')).map((f) => join('config/examples', f))];

describe('shipped configs', () => {
  for (const f of files) {
    it(`${f} validates and compiles`, async () => {
      const env = { ...process.env };
      delete env.NACOS_PASSWORD;
      const cfg = loadConfigFile(f, env);
      assert.ok(cfg.routes.length > 0);
      await dryCompile(cfg);
    });
  }
});

describe('deploy config', () => {
  it('deploy/meshgate.compose.yaml validates and compiles', async () => {
    await dryCompile(loadConfigFile('deploy/meshgate.compose.yaml'));
  });
});
