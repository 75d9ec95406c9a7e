// An Aedes MQTT broker (npm `aedes`, default in-memory persistence) for the integration tests:
// node aedes_broker.mjs <node_modules dir> <port>. Listens on 127.0.0.1 only; stops on SIGTERM.
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, port] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(modules), 'noop.js'));
const aedes = await import(pathToFileURL(require.resolve('aedes')).href);

// Aedes 1.x (Node.js 20 and later) has an async factory; 0.51, for Debian 12's Node.js 18, is a
// plain function.
const broker = aedes.Aedes?.createBroker ? await aedes.Aedes.createBroker() : aedes.default();
const server = net.createServer(broker.handle);
server.listen(Number(port), '127.0.0.1', () => console.log(`aedes listening on ${port}`));
const stop = () => server.close(() => broker.close(() => process.exit(0)));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
