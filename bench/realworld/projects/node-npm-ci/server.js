// A small Express service: / greets, /healthz answers for probes. Port from $PORT (8000 by default).
const express = require('express');

const app = express();
app.get('/', (_req, res) => res.type('text').send('Hello from kiln-rw node-npm-ci\n'));
app.get('/healthz', (_req, res) => res.type('text').send('healthy: node-npm-ci\n'));

const port = Number(process.env.PORT || 8000);
const server = app.listen(port, () => console.log(`listening on ${port}`));
// pid 1 gets no default SIGTERM handling: close and leave when asked
process.on('SIGTERM', () => server.close(() => process.exit(0)));
