// An Express service with cookie parsing: / greets by the "name" cookie. Port from $PORT (3000 by default).
const express = require('express');
const cookieParser = require('cookie-parser');

const app = express();
app.use(cookieParser());
app.get('/', (req, res) => res.type('text').send(`Hello ${req.cookies.name || 'stranger'}\n`));

const port = Number(process.env.PORT || 3000);
const server = app.listen(port, () => console.log(`listening on ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
