"""A generated test set for ``guard: secrets``: credentials of every format the issue names, inside
prose, YAML, .env, JSON and shell lines, and benign look-alikes (UUIDs, git SHAs, sha256 digests,
base64 images, tracking numbers, versions, "token" and "password" in sentences, placeholders).

Seeded and deterministic: ``generate(seed)`` gives the same samples every time. Secrets are random
strings in each vendor's published shape, so none is a real credential. A positive sample knows the
span of its secret; a negative knows its look-alike class.

    .venv/bin/python benchmarks/secrets_corpus.py [--seed 15] [--per-kind 60] [--show 3]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


@dataclass(frozen=True)
class Sample:
    text: str
    kind: str  # the secret's kind, or the look-alike's class for a negative
    secret: tuple[int, int] | None  # the secret's span; None for a negative


def _pick(rng: random.Random, alphabet: str, size: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _jwt(rng: random.Random, long: bool) -> str:
    header = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    claims: dict[str, object] = {"sub": str(rng.randrange(10**6, 10**9)),
                                 "iat": rng.randrange(1_600_000_000, 1_800_000_000),
                                 "name": rng.choice(["Ana Silva", "Wei Chen", "Joe Bloggs"])}
    if long:
        claims["scope"] = " ".join(rng.choice(["read", "write", "admin", "billing", "repo", "user"]) + f":{i}"
                                   for i in range(18))
    signature = _b64url(bytes(rng.randrange(256) for _ in range(rng.choice([32, 64]))))
    return f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}.{signature}"


def _pem(rng: random.Random) -> str:
    body = base64.b64encode(bytes(rng.randrange(256) for _ in range(rng.choice([900, 1190])))).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    label = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])


def _url_password(rng: random.Random) -> str:
    """A password as a URL holds it: reserved characters percent-encoded (RFC 3986)."""
    return "".join(rng.choice([rng.choice(ALNUM), rng.choice(ALNUM), rng.choice("-._~"),
                               rng.choice(["%21", "%23", "%24", "%40", "%26"])]) for _ in range(rng.randrange(10, 18)))


def _password(rng: random.Random) -> str:
    words = ["Sunset", "Maple", "Orbit", "Falcon", "River", "Copper", "Tango", "Quartz"]
    return rng.choice([
        lambda: _pick(rng, ALNUM + "!#$%&*@^", rng.randrange(12, 20)),
        lambda: f"{rng.choice(words)}{rng.randrange(10, 99)}{rng.choice('!#$%&*@')}{rng.choice(words).lower()}"
                f"{rng.randrange(100, 999)}",
    ])()


# kind -> (secret maker, variable names used in configs, how prose calls it)
SECRETS: dict[str, tuple[Callable[[random.Random], str], list[str], str]] = {
    "aws_access_key": (lambda r: r.choice(["AKIA", "ASIA"]) + _pick(r, string.ascii_uppercase + "234567", 16),
                       ["AWS_ACCESS_KEY_ID", "aws_access_key_id"], "AWS access key id"),
    "aws_secret_key": (lambda r: _pick(r, ALNUM + "/+", 40),
                       ["AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"], "AWS secret"),
    "github_pat": (lambda r: "ghp_" + _pick(r, ALNUM, 36), ["GITHUB_TOKEN", "gh_token"], "GitHub token"),
    "github_fine_grained_pat": (lambda r: "github_pat_" + _pick(r, ALNUM, 22) + "_" + _pick(r, ALNUM, 59),
                                ["GITHUB_PAT", "github_token"], "fine-grained GitHub token"),
    "gitlab_pat": (lambda r: "glpat-" + _pick(r, URLSAFE, 20), ["GITLAB_TOKEN", "gitlab_token"], "GitLab token"),
    "slack_bot_token": (lambda r: f"xoxb-{_pick(r, string.digits, 12)}-{_pick(r, string.digits, 13)}-"
                                  f"{_pick(r, ALNUM, 24)}", ["SLACK_BOT_TOKEN", "slack_token"], "Slack bot token"),
    "slack_webhook_url": (lambda r: f"https://hooks.slack.com/services/T{_pick(r, UPPER_DIGITS, 8)}/"
                                    f"B{_pick(r, UPPER_DIGITS, 10)}/{_pick(r, ALNUM, 24)}",
                          ["SLACK_WEBHOOK_URL", "webhook"], "Slack webhook"),
    "stripe_key": (lambda r: r.choice(["sk_live_", "rk_live_", "sk_test_"]) + _pick(r, ALNUM, r.choice([24, 99])),
                   ["STRIPE_SECRET_KEY", "stripe_key"], "Stripe key"),
    "google_api_key": (lambda r: "AIza" + _pick(r, URLSAFE, 35), ["GOOGLE_API_KEY", "maps_api_key"],
                       "Google API key"),
    "openai_api_key": (lambda r: r.choice([
        lambda: "sk-proj-" + _pick(r, URLSAFE, 74) + "T3BlbkFJ" + _pick(r, URLSAFE, 74),
        lambda: "sk-" + _pick(r, ALNUM, 20) + "T3BlbkFJ" + _pick(r, ALNUM, 20)])(),
        ["OPENAI_API_KEY", "openai_key"], "OpenAI key"),
    "anthropic_api_key": (lambda r: "sk-ant-api03-" + _pick(r, URLSAFE, 93) + "AA",
                          ["ANTHROPIC_API_KEY", "anthropic_key"], "Anthropic key"),
    "huggingface_token": (lambda r: "hf_" + _pick(r, string.ascii_letters, 34), ["HF_TOKEN", "hf_token"],
                          "Hugging Face token"),
    "npm_token": (lambda r: "npm_" + _pick(r, ALNUM, 36), ["NPM_TOKEN", "npm_auth"], "npm token"),
    "pypi_token": (lambda r: "pypi-AgEIcHlwaS5vcmc" + _pick(r, URLSAFE, r.randrange(60, 160)),
                   ["PYPI_TOKEN", "TWINE_PASSWORD"], "PyPI upload token"),
    "sendgrid_api_key": (lambda r: "SG." + _pick(r, URLSAFE, 22) + "." + _pick(r, URLSAFE, 43),
                         ["SENDGRID_API_KEY", "sendgrid_key"], "SendGrid key"),
    "twilio_api_key": (lambda r: "SK" + _pick(r, HEX, 32), ["TWILIO_API_KEY", "twilio_key_sid"], "Twilio API key"),
    "azure_storage_key": (lambda r: _pick(r, B64, 86) + "==", ["AZURE_STORAGE_CONNECTION_STRING"],
                          "Azure storage connection string"),
    "jwt": (lambda r: _jwt(r, long=r.random() < 0.5), ["AUTH_TOKEN", "session_jwt"], "JWT"),
    "private_key": (_pem, ["PRIVATE_KEY"], "private key"),
    "url_password": (_url_password, ["DATABASE_URL", "REDIS_URL"], "connection string"),
    "generic_secret": (lambda r: _pick(r, ALNUM, r.choice([24, 32, 40])),
                       ["API_KEY", "client_secret", "auth_token", "SECRET_KEY"], "API key"),
    "password": (_password, ["DB_PASSWORD", "password", "admin_password"], "password"),
}
PROSE = [
    "Hi, I pasted my {what} here: {value} - can you tell me why the request keeps failing?",
    "My {what} is {value}. Please rotate it tomorrow.",
    "Use {value} as the {what} for the staging box, it worked yesterday.",
    "Here is the {what}:\n\n{value}\n\nDoes it look right?",
]
CONFIGS = {
    "yaml": "service:\n  name: billing\n  {name}: {value}\n  timeout: 30\n",
    "yaml_quoted": "app:\n  {name}: \"{value}\"\n  region: eu-west-1\n",
    "env": "DEBUG=false\n{name}={value}\nPORT=8080\n",
    "json": "{{\"region\": \"eu-west-1\", \"{name}\": \"{value}\", \"retries\": 3}}",
    "shell": "export {name}={value}\n./deploy.sh --env prod",
    "shell_quoted": "export {name}=\"{value}\" && npm publish",
}


def _wrap(kind: str, secret: str, rng: random.Random) -> tuple[str, str]:
    """The secret as it would sit in text: (the text with a {value} slot, the value put in it)."""
    if kind == "url_password":
        user = rng.choice(["admin", "app", "svc_billing", "root"])
        scheme, host = rng.choice([("postgres", "db.internal:5432/app"), ("mysql", "10.0.3.4:3306/shop"),
                                   ("mongodb+srv", "cluster0.example.net/prod"), ("redis", "cache.local:6379/0"),
                                   ("amqp", "mq.example.com:5672/vhost")])
        return f"{scheme}://{user}:{{value}}@{host}", secret
    if kind == "azure_storage_key":
        return ("DefaultEndpointsProtocol=https;AccountName=acct" + _pick(rng, string.ascii_lowercase, 6) +
                ";AccountKey={value};EndpointSuffix=core.windows.net"), secret
    return "{value}", secret


def positive(kind: str, rng: random.Random) -> Sample:
    make, names, what = SECRETS[kind]
    secret = make(rng)
    holder, value = _wrap(kind, secret, rng)
    if kind == "private_key":
        style = rng.choice(["prose", "file"])
        template = rng.choice(PROSE[3:]) if style == "prose" else "cat ~/.ssh/id_rsa\n{value}\n"
        text = template.replace("{what}", what).replace("{value}", holder)
    elif kind in ("aws_secret_key", "generic_secret", "password") or rng.random() < 0.6:
        # Context rules need a name before the value: config files and shell lines
        fmt = rng.choice(list(CONFIGS))
        if kind == "password" and rng.random() < 0.3:
            text = f"The {rng.choice(['database', 'admin', 'wifi'])} password: {{value}} (do not share)"
        else:
            text = CONFIGS[fmt].replace("{name}", rng.choice(names)).replace("{value}", holder)
    else:
        text = rng.choice(PROSE).replace("{what}", what).replace("{value}", holder)
    if kind == "jwt" and rng.random() < 0.3:
        text = 'curl -H "Authorization: Bearer {value}" https://api.example.com/v1/me'
    start = text.index("{value}")
    text = text.replace("{value}", value, 1)
    return Sample(text, kind, (start, start + len(value)))


def _tracking(rng: random.Random) -> str:
    return rng.choice([lambda: "1Z" + _pick(rng, UPPER_DIGITS, 16), lambda: _pick(rng, string.digits, 12),
                       lambda: "9400" + _pick(rng, string.digits, 18)])()


def _semver(rng: random.Random) -> str:
    core = f"{rng.randrange(0, 20)}.{rng.randrange(0, 40)}.{rng.randrange(0, 100)}"
    return core + rng.choice(["", "", f"-beta.{rng.randrange(1, 9)}",
                              f"-rc.{rng.randrange(1, 5)}+build.{rng.randrange(100, 999)}"])


def _b64_digest(rng: random.Random) -> str:
    return base64.b64encode(bytes(rng.randrange(256) for _ in range(32))).decode()


def _uuid(rng: random.Random) -> str:
    h = _pick(rng, HEX, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


LOOKALIKES: dict[str, list[Callable[[random.Random], str]]] = {
    "uuid": [lambda r: f"Your order {_uuid(r)} has shipped.", lambda r: f"request_id: {_uuid(r)}\nstatus: ok\n",
             lambda r: f'{{"trace_id": "{_uuid(r)}", "span": 3}}', lambda r: f"SESSION_ID={_uuid(r)}\n"],
    "git_sha": [lambda r: f"Fixed in commit {_pick(r, HEX, 40)}, see the changelog.",
                lambda r: f"git checkout {_pick(r, HEX, 40)}", lambda r: f"sha: {_pick(r, HEX, 40)}\nref: main\n",
                lambda r: f"Merge {_pick(r, HEX, 7)} into {_pick(r, HEX, 7)}"],
    "sha256": [lambda r: f"docker pull nginx@sha256:{_pick(r, HEX, 64)}",
               lambda r: f"checksum: {_pick(r, HEX, 64)}\n", lambda r: f"SHA-256 of the file is {_pick(r, HEX, 64)}.",
               lambda r: f'"integrity": "sha256-{_b64_digest(r)}"'],
    "base64_image": [lambda r: "![logo](data:image/png;base64," + _img(r) + ")",
                     lambda r: '<img src="data:image/jpeg;base64,' + _img(r) + '" alt="chart">',
                     lambda r: "background: url(data:image/gif;base64," + _img(r) + ");"],
    "tracking_number": [lambda r: f"Your package tracking number is {_tracking(r)}.",
                        lambda r: f"tracking: {_tracking(r)}\ncarrier: UPS\n"],
    "semver": [lambda r: f"Upgrade to v{_semver(r)} before Friday.", lambda r: f"version: {_semver(r)}\n",
               lambda r: f'"dependencies": {{"react": "^{_semver(r)}"}}',
               lambda r: f"pip install requests=={_semver(r)}"],
    "token_word": [lambda r: r.choice([
        "Each token costs a fraction of a cent, so long prompts add up.",
        "The tokenizer splits words into tokens before the model sees them.",
        "Use your access token to sign in, then refresh it every hour.",
        "Tokens expire after 30 minutes; request a new token when you get a 401.",
        "The API key and the token are different things: one identifies you, the other a session.",
        "Store the token in a secure vault, never in source control."])],
    "password_word": [lambda r: r.choice([
        "Reset your password from the settings page.",
        "The password must be at least 12 characters long and include a symbol.",
        "If you forgot your password, click the link we emailed you.",
        "Password managers make it easy to use a different password on every site.",
        "Never share your password with anyone, not even support staff.",
        "password: the field is required"])],
    "placeholder": [lambda r: r.choice([
        "password: <your password>", "API_KEY=YOUR_API_KEY", "token: ${GITHUB_TOKEN}", "password = \"changeme\"",
        "export OPENAI_API_KEY=sk-...", "\"password\": \"********\"", "secret: <REPLACE_ME>",
        "api_key: xxxxxxxxxxxxxxxxxxxxxxxx", "client_secret: {{ secrets.CLIENT_SECRET }}",
        "DB_PASSWORD=%DB_PASSWORD%", "Authorization: Bearer <token>", "password: your-password-here",
        "AWS_SECRET_ACCESS_KEY=<your secret key>", "token = os.environ[\"API_TOKEN\"]",
        "password: $(cat /run/secrets/db_password)", "GITHUB_TOKEN=ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"])],
}


def _img(rng: random.Random) -> str:
    return base64.b64encode(bytes(rng.randrange(256) for _ in range(rng.randrange(150, 450)))).decode()


def generate(seed: int = 15, per_kind: int = 60) -> tuple[list[Sample], list[Sample]]:
    """(positives, negatives): ``per_kind`` samples of every secret kind and every look-alike class."""
    rng = random.Random(seed)
    positives = [positive(kind, rng) for kind in SECRETS for _ in range(per_kind)]
    negatives = [Sample(rng.choice(makers)(rng), name, None) for name, makers in LOOKALIKES.items()
                 for _ in range(per_kind)]
    return positives, negatives


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--per-kind", type=int, default=60)
    parser.add_argument("--show", type=int, default=2, help="samples to print per kind")
    args = parser.parse_args()
    positives, negatives = generate(args.seed, args.per_kind)
    shown: dict[str, int] = {}
    for sample in positives + negatives:
        if shown.get(sample.kind, 0) < args.show:
            shown[sample.kind] = shown.get(sample.kind, 0) + 1
            print(f"--- {sample.kind} {sample.secret}\n{sample.text}")
    print(f"{len(positives)} positives ({len(SECRETS)} kinds), {len(negatives)} negatives ({len(LOOKALIKES)} classes)")


if __name__ == "__main__":
    main()
