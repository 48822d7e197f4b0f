"""A real SMTP server for Waymark's integration tests (Debian's python3-aiosmtpd).

    smtp_server.py PORT MAILDIR

Listens on 127.0.0.1:PORT (0 picks a free port) and prints `PORT <n>` as its first line on
stdout once it accepts connections. Every accepted message is saved as MAILDIR/<n>.eml (n counts
from 1; written to a temporary name and renamed, so a reader never sees half a message), with
`X-Envelope-From` and `X-Envelope-To` header lines put in front, as a delivering MTA would.
The answer to DATA is `250 2.0.0 Ok: queued as <n>`, so a provider response names its file.

Recipients pick how the server behaves, by how their address starts:

- `bounce...`: RCPT TO is refused for good with `550 5.1.1 No such mailbox`.
- `rejected...`: RCPT TO is refused for good the way Postfix words it, naming the address:
  `550 5.1.1 <address>: Recipient address rejected: User unknown in virtual mailbox table`.
- `flaky...`:  RCPT TO is refused for now with `451 4.3.0 Try again later` the first two times
  per address, then accepted.
- `slow...`:   the first DATA per address stalls for 20 seconds before it is answered, and the
  message is only saved if the client is still there then. A test kills the client during the
  stall to crash it with a message on the wire.
- `sluggish...`: the same, for 3 seconds: a slow server that does answer in the end.

Everything that happens is appended to MAILDIR/smtp.log, one line each, as
`<unix time> <EVENT> <address> [detail]` with EVENT one of RCPT-OK, RCPT-451, RCPT-550, STALL,
ABANDONED, SAVED.
"""

import asyncio
import collections
import os
import sys
import time

from aiosmtpd.smtp import SMTP

# Seconds the first DATA per address stalls, by how the address starts (longest first).
STALLS = (("sluggish", 3), ("slow", 20))


class Handler:
    def __init__(self, maildir):
        self.maildir = maildir
        self.saved = 0
        self.flaky_attempts = collections.Counter()
        self.stalled = set()
        self.log_path = os.path.join(maildir, "smtp.log")

    def log(self, event, address, detail=""):
        line = f"{time.time():.6f} {event} {address} {detail}".rstrip() + "\n"
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(line)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("bounce"):
            self.log("RCPT-550", address)
            return "550 5.1.1 No such mailbox"
        if local.startswith("rejected"):
            self.log("RCPT-550", address)
            return (
                f"550 5.1.1 <{address}>: Recipient address rejected: "
                "User unknown in virtual mailbox table"
            )
        if local.startswith("flaky"):
            self.flaky_attempts[address] += 1
            if self.flaky_attempts[address] <= 2:
                self.log("RCPT-451", address, str(self.flaky_attempts[address]))
                return "451 4.3.0 Try again later"
        self.log("RCPT-OK", address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for address in envelope.rcpt_tos:
            local = address.split("@", 1)[0].lower()
            stall = next((s for prefix, s in STALLS if local.startswith(prefix)), None)
            if stall is not None and address not in self.stalled:
                self.stalled.add(address)
                self.log("STALL", address, str(stall))
                try:
                    await asyncio.sleep(stall)
                except asyncio.CancelledError:
                    # The client went away before it heard an answer: nothing was accepted.
                    self.log("ABANDONED", address)
                    raise
        self.saved += 1
        number = self.saved
        head = "".join(
            [f"X-Envelope-From: {envelope.mail_from}\r\n"]
            + [f"X-Envelope-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos]
        ).encode("ascii")
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        partial = os.path.join(self.maildir, f".{number}.eml.partial")
        with open(partial, "wb") as out:
            out.write(head + content)
            out.flush()
            os.fsync(out.fileno())
        os.rename(partial, os.path.join(self.maildir, f"{number}.eml"))
        self.log("SAVED", ",".join(envelope.rcpt_tos), str(number))
        return f"250 2.0.0 Ok: queued as {number}"


async def main():
    if len(sys.argv) != 3:
        sys.exit("usage: smtp_server.py PORT MAILDIR")
    port, maildir = int(sys.argv[1]), sys.argv[2]
    os.makedirs(maildir, exist_ok=True)
    handler = Handler(maildir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="smtp.waymark.test", enable_SMTPUTF8=True),
        host="127.0.0.1",
        port=port,
    )
    chosen = server.sockets[0].getsockname()[1]
    print(f"PORT {chosen}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
