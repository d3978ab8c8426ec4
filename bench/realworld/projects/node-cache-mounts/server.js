// A small Express service: / greets, /healthz answers for probes. Port from $PORT (3000 by default).
const express = require('express');
const morgan = require('morgan');

const app = express();
app.use(morgan('tiny'));
app.get('/', (_req, res) => res.type('text').send('Hello from Express, built with cache mounts\n'));
app.get('/healthz', (_req, res) => res.type('text').send('ok\n'));

const port = Number(process.env.PORT || 3000);
const server = app.listen(port, () => console.log(`listening on ${port}`));
// pid 1 gets no default SIGTERM handling: close and leave when asked
process.on('SIGTERM', () => server.close(() => process.exit(0)));
