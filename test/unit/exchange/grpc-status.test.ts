import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeGrpcMessage, formatGrpcTimeout, GrpcStatus, grpcStatusFor, isGrpcRequest, parseGrpcTimeout } from '../../../src/exchange/grpc-status.js';

describe('grpc-timeout', () => {
  it('parses every unit into milliseconds', () => {
    assert.equal(parseGrpcTimeout('2H'), 7_200_000);
    assert.equal(parseGrpcTimeout('3M'), 180_000);
    assert.equal(parseGrpcTimeout('5S'), 5_000);
    assert.equal(parseGrpcTimeout('250m'), 250);
    assert.equal(parseGrpcTimeout('1500u'), 1.5);
    assert.equal(parseGrpcTimeout('2000000n'), 2);
  });
  it('ignores malformed values (no unit, too many digits, unknown unit)', () => {
    assert.equal(parseGrpcTimeout('100'), undefined);
    assert.equal(parseGrpcTimeout('123456789m'), undefined);
    assert.equal(parseGrpcTimeout('5s'), undefined);
    assert.equal(parseGrpcTimeout(undefined), undefined);
    assert.equal(parseGrpcTimeout(['1S']), undefined);
  });
  it('formats at most 8 digits, never rounding a deadline down to zero', () => {
    assert.equal(formatGrpcTimeout(250), '250m');
    assert.equal(formatGrpcTimeout(0.2), '1m');
    assert.equal(formatGrpcTimeout(99_999_999), '99999999m');
    assert.equal(formatGrpcTimeout(100_000_000), '100000S');
    for (const ms of [1, 999, 12_345, 3_600_000, 2e11]) {
      const back = parseGrpcTimeout(formatGrpcTimeout(ms))!;
      assert.ok(back >= ms, `${ms} -> ${formatGrpcTimeout(ms)}`);
    }
  });
});

describe('gRPC statuses of gateway errors', () => {
  it('maps flags and HTTP statuses the way gRPC clients expect', () => {
    assert.equal(grpcStatusFor('UF', 502), GrpcStatus.UNAVAILABLE);
    assert.equal(grpcStatusFor('UH', 503), GrpcStatus.UNAVAILABLE);
    assert.equal(grpcStatusFor('UO', 503), GrpcStatus.UNAVAILABLE);
    assert.equal(grpcStatusFor('UT', 504), GrpcStatus.DEADLINE_EXCEEDED);
    assert.equal(grpcStatusFor('NR', 404), GrpcStatus.UNIMPLEMENTED);
    assert.equal(grpcStatusFor('RL', 429), GrpcStatus.RESOURCE_EXHAUSTED);
    assert.equal(grpcStatusFor('UA', 401), GrpcStatus.UNAUTHENTICATED);
    assert.equal(grpcStatusFor('IP', 403), GrpcStatus.PERMISSION_DENIED);
    assert.equal(grpcStatusFor('XX', 418), GrpcStatus.UNKNOWN);
  });
  it('percent-encodes grpc-message outside printable ASCII, and % itself', () => {
    assert.equal(encodeGrpcMessage('plain text'), 'plain text');
    assert.equal(encodeGrpcMessage('100% ✓'), '100%25 %E2%9C%93');
    assert.equal(encodeGrpcMessage('a\nb'), 'a%0Ab');
  });
  it('recognises gRPC requests by content-type', () => {
    assert.equal(isGrpcRequest({ 'content-type': 'application/grpc' }), true);
    assert.equal(isGrpcRequest({ 'content-type': 'application/grpc+proto' }), true);
    assert.equal(isGrpcRequest({ 'content-type': 'application/json' }), false);
    assert.equal(isGrpcRequest({}), false);
  });
});
