"""radar.source: logging statements and their message templates, per language, from small
snippets whose answers are known."""

from __future__ import annotations

import textwrap

import pytest

pytest.importorskip("tree_sitter")

from radar.source.extract import ExtractOptions
from radar.source.index import build_index
from radar.source.link import SourceIndex
from radar.source.templates import display, split_placeholders

JAVA = """\
package demo;

public class OrderService {
    private static final Logger LOG = LoggerFactory.getLogger(OrderService.class);
    static final String PREFIX = "order ";

    void place(String id, int n) {
        LOG.info("Placing order " + id +
                 " with " + n + " items");
        LOG.warn("Payment {} failed after {} tries", id, n);
        log.error(String.format("Stock low: %s left of %d", id, n));
        NameNode.stateChangeLog.debug(PREFIX + "cancelled: " + id);
        String msg = "Refund issued for " + id;
        LOG.info(msg);
        LOG.info((n > 5 ? "Large " : "") + "batch of " + n);
        System.err.println("fatal: disk " + id);
        LOG.error("Cannot ship " + id, new IOException("x"));
        if (LOG.isDebugEnabled()) { catalog.info("not a logger"); }
        StringBuilder targets = new StringBuilder();
        LOG.info("Sending " + id + " to " + targets);
        notify("Customer notified about " + id);
    }
}
"""

PYTHON = """\
import logging
logger = logging.getLogger(__name__)
RETRY_MSG = "retrying in %d s"


class Worker:
    def run(self, job, n):
        logger.info("job %s started with %d tasks", job, n)
        self.log.warning(f"job {job} slow: {n!r} s")
        logging.error("failed: " + str(job))
        logger.debug("queue {} has {} items".format(job, n))
        logger.info(RETRY_MSG, n)
        logger.log(logging.WARNING, "disk %s full" % job)
        logger.exception("crashed while handling %s", job, exc_info=True)
        print("done", job)
        LOG.warning(_LW("Instance %s vanished"), job)
"""

GO = """\
package main

const greeting = "hello "

func (s *Server) Start(port int) {
	log.Printf("listening on port %d", port)
	s.logger.Infof("server %s ready after %v", s.name, d)
	log.Println("shutdown requested by", user)
	fmt.Fprintf(os.Stderr, "bad config: %v\\n", err)
	logger.Info("connection closed", zap.String("peer", p))
	slog.Warn("cache miss", "key", k)
	log.Print(greeting + name)
	fmt.Errorf("not a log: %v", err)
}
"""

JAVASCRIPT = """\
class Cart {
  add(item, qty) {
    console.log(`adding ${qty} of ${item}`);
    logger.warn('cart ' + this.id + ' is full');
    console.error('failed to add %s: %d', item, qty);
    logger.log('error', 'checkout failed for ' + item);
    console.info('cart', this.id, 'emptied');
  }
}
const handler = (req) => { log.info("request from " + req.ip); };
"""

TYPESCRIPT = """\
export function charge(amount: number): void {
  this.logger.error(`charge of ${amount} declined`);
}
"""


SCALA = """\
class BlockManager(x: Int) extends Logging {
  private val PREFIX = "bm "
  def register(id: String, mem: Long): Unit = {
    logInfo(s"Registering block manager $id with ${Utils.bytesToString(mem)} RAM, $x")
    logWarning("Lost " + id + " executor")
    log.info("Got %s".format(id))
    logDebug(f"took $mem%d ms")
    logger.warn("Slow {} after {}", id, mem)
    logInfo(PREFIX + "done")
  }
}
"""


C = """\
#define GREETING "hello "

static void
do_auth(struct ssh *ssh, const char *method, int port)
{
	logit("Accepted %s for %s from %.200s port %d ssh2",
	    method, user, host, port);
	error_fr(r, "parse %s", method);
	syslog(LOG_ERR, "bad thing: %m");
	fprintf(stderr, GREETING "%s\\n", prog);
	do_log2(level, "%s %s for %s", msg, method, user);
	debug3("%s: done", __func__);
	strlcpy(buf, "not a log", sizeof(buf));
}
"""


def _index(tmp_path, files: dict[str, str], **options) -> SourceIndex:
    src = tmp_path / "src"
    for name, text in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    build_index([src], tmp_path / "index.jsonl", ExtractOptions(**options))
    return SourceIndex.load(tmp_path / "index.jsonl")


def _by_line(index: SourceIndex, file: str) -> dict[int, dict]:
    return {s["line"]: s for s in index.statements if s["file"] == file}


def _texts(statement: dict) -> list[str]:
    return [display(template) for template in statement["templates"]]


def test_java_statements_templates_levels_and_places(tmp_path):
    index = _index(tmp_path, {"demo/OrderService.java": JAVA}, wrappers=("notify:warn",))
    found = _by_line(index, "demo/OrderService.java")
    assert _texts(found[8]) == ["Placing order <*> with <*> items"]      # across lines
    assert (found[8]["level"], found[8]["function"], found[8]["class"]) == \
        ("info", "place", "OrderService")
    assert found[8]["end_line"] == 9 and found[8]["statement"].startswith("LOG.info(")
    assert _texts(found[10]) == ["Payment <*> failed after <*> tries"]   # SLF4J {}
    assert found[10]["level"] == "warn"
    assert _texts(found[11]) == ["Stock low: <*> left of <*>"]           # String.format
    assert _texts(found[12]) == ["order cancelled: <*>"]                 # constant, other logger
    assert found[12]["level"] == "debug"
    assert _texts(found[14]) == ["Refund issued for <*>"]                # local variable
    assert sorted(_texts(found[15])) == ["Large batch of <*>", "batch of <*>"]   # conditional
    assert _texts(found[16]) == ["fatal: disk <*>"] and found[16]["level"] is None
    assert _texts(found[17]) == ["Cannot ship <*>"]      # log4j's throwable is not the message
    assert _texts(found[20]) == ["Sending <*> to <*>"]   # a builder filled in later is a slot
    assert _texts(found[21]) == ["Customer notified about <*>"]          # configured wrapper
    assert found[21]["level"] == "warn"
    assert 18 not in found                               # isDebugEnabled, catalog.info


def test_python_statements(tmp_path):
    found = _by_line(_index(tmp_path, {"worker.py": PYTHON}), "worker.py")
    assert _texts(found[8]) == ["job <*> started with <*> tasks"]        # lazy % arguments
    assert (found[8]["function"], found[8]["class"]) == ("run", "Worker")
    assert _texts(found[9]) == ["job <*> slow: <*> s"] and found[9]["level"] == "warn"
    assert _texts(found[10]) == ["failed: <*>"] and found[10]["level"] == "error"
    assert _texts(found[11]) == ["queue <*> has <*> items"]              # str.format
    assert _texts(found[12]) == ["retrying in <*> s"]                    # module constant
    assert _texts(found[13]) == ["disk <*> full"] and found[13]["level"] == "warn"
    assert _texts(found[14]) == ["crashed while handling <*>"]
    assert found[14]["level"] == "error"
    assert _texts(found[15]) == ["done <*>"]                             # print joins by spaces
    assert _texts(found[16]) == ["Instance <*> vanished"]                # gettext's _LW()


def test_go_statements(tmp_path):
    found = _by_line(_index(tmp_path, {"cmd/server.go": GO}), "cmd/server.go")
    assert _texts(found[6]) == ["listening on port <*>"]
    assert (found[6]["function"], found[6]["class"]) == ("Start", "Server")
    assert _texts(found[7]) == ["server <*> ready after <*>"] and found[7]["level"] == "info"
    assert _texts(found[8]) == ["shutdown requested by <*>"]             # Println spacing
    assert _texts(found[9]) == ["bad config: <*>\n"]                     # Fprintf's writer
    assert _texts(found[10])[0].startswith("connection closed")          # zap fields after
    assert found[11]["level"] == "warn"
    assert _texts(found[12]) == ["hello <*>"]                            # const
    assert 13 not in found                                               # fmt.Errorf


def test_javascript_and_typescript_statements(tmp_path):
    index = _index(tmp_path, {"web/cart.js": JAVASCRIPT, "web/pay.ts": TYPESCRIPT})
    found = _by_line(index, "web/cart.js")
    assert _texts(found[3]) == ["adding <*> of <*>"]                     # template literal
    assert (found[3]["function"], found[3]["class"]) == ("add", "Cart")
    assert _texts(found[4]) == ["cart <*> is full"] and found[4]["level"] == "warn"
    assert _texts(found[5]) == ["failed to add <*>: <*>"] and found[5]["level"] == "error"
    assert _texts(found[6]) == ["checkout failed for <*>"] and found[6]["level"] == "error"
    assert _texts(found[7]) == ["cart <*> emptied"]                     # console joins args
    assert _texts(found[10]) == ["request from <*>"] and found[10]["function"] == "handler"
    typescript = _by_line(index, "web/pay.ts")
    assert _texts(typescript[2]) == ["charge of <*> declined"]
    assert typescript[2]["function"] == "charge"


def test_scala_statements(tmp_path):
    pytest.importorskip("tree_sitter_scala")
    found = _by_line(_index(tmp_path, {"core/BlockManager.scala": SCALA}),
                     "core/BlockManager.scala")
    assert _texts(found[4]) == ["Registering block manager <*> with <*> RAM, <*>"]
    assert (found[4]["level"], found[4]["function"], found[4]["class"]) == \
        ("info", "register", "BlockManager")
    assert _texts(found[5]) == ["Lost <*> executor"] and found[5]["level"] == "warn"
    assert _texts(found[6]) == ["Got <*>"]                               # "...".format
    assert _texts(found[7]) == ["took <*> ms"] and found[7]["level"] == "debug"   # f"$x%d"
    assert _texts(found[8]) == ["Slow <*> after <*>"]                    # SLF4J {}
    assert _texts(found[9]) == ["bm done"]                               # val constant


def test_c_statements(tmp_path):
    pytest.importorskip("tree_sitter_c")
    found = _by_line(_index(tmp_path, {"auth.c": C}), "auth.c")
    assert _texts(found[6]) == ["Accepted <*> for <*> from <*> port <*> ssh2"]
    assert (found[6]["level"], found[6]["function"], found[6]["end_line"]) == \
        ("info", "do_auth", 7)
    assert _texts(found[8]) == ["parse <*>"] and found[8]["level"] == "error"
    assert _texts(found[9]) == ["bad thing: <*>"] and found[9]["level"] == "error"
    assert _texts(found[10]) == ["hello <*>\n"]                         # #define constant
    assert _texts(found[11]) == ["<*> <*> for <*>"]                      # a *log function
    assert _texts(found[12]) == ["<*>: done"] and found[12]["level"] == "debug"
    assert 13 not in found


def test_message_built_in_one_class_and_logged_in_another(tmp_path):
    """A variable composed in one file and printed through a field of another class:
    the link points where the text is written, and says where it is logged."""
    builder = """\
    class Server {
        void serve(Block block) {
            final String traceFmt = registration + " Served block " + block + " to " +
                address;
            new Sender(block, traceFmt).send();
        }
    }
    """
    sender = """\
    class Sender {
        private final String traceFmt;
        Sender(Block b, String traceFmt) { this.traceFmt = traceFmt; }
        void send() {
            ClientTraceLog.info(String.format(traceFmt, 42));
        }
    }
    """
    index = _index(tmp_path, {"Server.java": builder, "Sender.java": sender})
    indirect = [s for s in index.statements if "logged_at" in s]
    assert len(indirect) == 1
    assert (indirect[0]["file"], indirect[0]["line"]) == ("Server.java", 3)
    assert indirect[0]["logged_at"] == {"root": 0, "file": "Sender.java", "line": 5}
    assert _texts(indirect[0]) == ["<*> Served block <*> to <*>"]
    assert indirect[0]["function"] == "serve" and indirect[0]["level"] == "info"


def test_functions_that_log_their_parameter(tmp_path):
    """A helper logging its parameter: each call passing text is a statement at the call."""
    helper = """\
    class Environment {
        static void logEnv(String msg, Logger log) {
            for (String e : list()) {
                log.info(msg + e);
            }
        }
    }
    """
    caller = """\
    class Server {
        void start() {
            Environment.logEnv("Server environment:", LOG);
            names.put("not a log", LOG);
        }
    }
    """
    python = """\
    class Job:
        def note(self, text, *args):
            self.log.info("job: " + text, *args)

        def run(self):
            self.note("started %s", self.name)
    """
    index = _index(tmp_path, {"Environment.java": helper, "Server.java": caller,
                              "job.py": python})
    calls = {(s["file"], s["line"]): s for s in index.statements if "logged_at" in s}
    assert _texts(calls[("Server.java", 3)]) == ["Server environment:<*>"]
    assert calls[("Server.java", 3)]["logged_at"]["file"] == "Environment.java"
    assert ("Server.java", 4) not in calls        # a call to a function that does not log
    assert _texts(calls[("job.py", 6)]) == ["job: started <*>"]


@pytest.mark.parametrize(("text", "style", "expected"), [
    ("took %d ms (%.2f%%)", "printf", ["took ", None, " ms (", None, "%)"]),
    ("user {0} has {count} items {{raw}}", "brace", ["user ", None, " has ", None,
                                                      " items {raw}"]),
    ("sid {} at \\{} done", "slf4j", ["sid ", None, " at {} done"]),
    ("go %v and %+v and %q", "printf", ["go ", None, " and ", None, " and ", None]),
])
def test_placeholders_become_slots(text, style, expected):
    assert split_placeholders(text, style) == expected
