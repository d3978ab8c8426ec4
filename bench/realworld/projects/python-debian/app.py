# A small Flask app on Debian's python3-flask: / greets, /healthz answers for probes.
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello from Flask on Debian's python3\n"


@app.route("/healthz")
def healthz():
    return "ok\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=8000)
