// Every filter kind the gateway has: adding one touches its own module and
// one line here. The config schema takes `filters:` entries as { type, ... };
// each entry is checked against its kind's own schema when a config compiles
// (a bad entry refuses the config with its key path named).
import { flowControlFilter } from '../resilience/flow/filter.js';
import { systemProtectionFilter } from '../resilience/system-protection.js';
import { headersFilter } from './headers.js';
import { ipRestrictionFilter } from './ip-restriction.js';
import { rewriteFilter } from './rewrite.js';
import { ccFilter } from './cc/filter.js';
import type { FilterPlugin } from './types.js';
import { basicAuthFilter } from './auth/basic-auth.js';
import { hmacAuthFilter } from './auth/hmac-auth.js';
import { jwtAuthFilter } from './auth/jwt-auth.js';
import { keyAuthFilter } from './auth/key-auth.js';
import { wafFilter } from './waf/filter.js';

export const FILTERS: readonly FilterPlugin[] = [ipRestrictionFilter, rewriteFilter, headersFilter, flowControlFilter, systemProtectionFilter, wafFilter, keyAuthFilter, basicAuthFilter, jwtAuthFilter, hmacAuthFilter, ccFilter];
