// The Node server SDK's own status of a Redis big segment store, as JSON.
//
// Usage: node store_status.js '{"host": ..., "port": ..., "password": ..., "prefix": ..., "staleAfter": ...}'
// Prints {"available": bool, "stale": bool}: what
// client.bigSegmentStoreStatusProvider reports after one poll of the store.
// The client is offline: it talks to nothing but the Redis it is given.
'use strict';

const ld = require('@launchdarkly/node-server-sdk');
const { RedisBigSegmentStore } = require('@launchdarkly/node-server-sdk-redis');

async function main() {
  const args = JSON.parse(process.argv[2]);
  const client = ld.init('sdk-00000000-0000-0000-0000-000000000000', {
    offline: true,
    sendEvents: false,
    logger: ld.basicLogger({ level: 'none' }),
    bigSegments: {
      store: RedisBigSegmentStore({
        prefix: args.prefix,
        redisOpts: {
          host: args.host,
          port: args.port,
          password: args.password || undefined,
          connectTimeout: 2000,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        },
      }),
      staleAfter: args.staleAfter,
      statusPollInterval: 3600,
    },
  });
  try {
    const status = await client.bigSegmentStoreStatusProvider.requireStatus();
    process.stdout.write(JSON.stringify({ available: status.available, stale: status.stale }) + '\n');
  } finally {
    client.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(String(err) + '\n');
    process.exit(1);
  },
);
