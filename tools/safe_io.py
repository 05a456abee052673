"""Files in and out for the Python tools (the three converters, the golden
tool), by the same rules as the C writer (src/outfile.h):

  - write_file(path, chunks): the bytes go into a new, uniquely named
    temporary beside the target (O_EXCL: never a planted name or
    link) and are renamed over the target only when complete and synced. The
    target must be a new name or a regular file: a FIFO, device, socket or
    directory is refused and left untouched, nothing is opened on it (so
    nothing blocks). A symlink is written through (the file it names is
    replaced). A target that is the same file (device and inode) as one of
    the inputs is refused. On any failure, and on SIGINT/SIGTERM/SIGHUP, the
    temporary is removed and the target left as it was; past `ulimit -f` the
    write fails with EFBIG instead of SIGXFSZ killing the process.
  - open_input(path) / read_input(path): regular files only, refused before
    any open that could block (a FIFO, device, socket or directory).
  - main_guard(prog, fn): the tools' top level: every failure ends as one
    printable line "PROG: message" and exit 1; `--debug` (or TINYLLM_DEBUG=1)
    shows the traceback instead.
"""
import os
import secrets
import signal
import stat
import sys
import traceback


class ToolError(Exception):
    """A failure to report as one line (the message names the file or key)."""


def printable(s, limit=200):
    """s with control characters escaped and cut to `limit` characters, for
    one-line messages (a name with a newline or ESC stays on one line)."""
    s = str(s)
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in s[:limit])
    return out + ("..." if len(s) > limit else "")


def _kind(mode):
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_input(path, what="input"):
    """A regular file opened for reading ('rb'); ToolError otherwise, before
    any blocking open."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ToolError(f"{printable(path)}: cannot read the {what}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ToolError(f"{printable(path)}: the {what} is {_kind(st.st_mode)} (expected a regular file)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise ToolError(f"{printable(path)}: cannot read the {what}: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # replaced between stat and open
        os.close(fd)
        raise ToolError(f"{printable(path)}: the {what} is {_kind(st.st_mode)} (expected a regular file)")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_input(path, what="input", max_bytes=None):
    """The whole of a regular file (at most max_bytes)."""
    with open_input(path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if max_bytes is not None and size > max_bytes:
            raise ToolError(f"{printable(path)}: the {what} is {size} bytes (expected at most {max_bytes})")
        return f.read() if max_bytes is None else f.read(max_bytes + 1)[:max_bytes + 1]


def _resolve_target(path, inputs):
    if not path:
        raise ToolError("empty output file name (expected a path to write)")
    target = path
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        try:
            st = os.stat(target)
        except FileNotFoundError:
            raise ToolError(f"{printable(path)}: is a symlink to a missing file (expected a regular file or a "
                            "new name)") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ToolError(f"{printable(path)}: is {_kind(st.st_mode)} (expected a regular file or a new name; "
                        "left untouched)")
    if st is not None:
        for i in inputs:
            try:
                ist = os.stat(i)
            except OSError:
                continue
            if (ist.st_dev, ist.st_ino) == (st.st_dev, st.st_ino):
                raise ToolError(f"{printable(path)}: is the input file {printable(i)} (expected another file: "
                                "writing would replace it)")
    return target, st


class _Interrupted(BaseException):
    pass


def _raise_interrupted(sig, _frame):
    raise _Interrupted(sig)


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def write_file(path, chunks, inputs=()):
    """Writes the byte strings of `chunks` (an iterable, or one bytes) to
    `path` by the rules above."""
    target, old = _resolve_target(path, inputs)
    mask = os.umask(0)  # (a single-threaded tool: nothing else creates files meanwhile)
    os.umask(mask)
    mode = (old.st_mode & 0o7777) if old is not None else (0o666 & ~mask)
    handlers = {}
    if hasattr(signal, "SIGXFSZ"):
        handlers[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) != signal.SIG_IGN:
            handlers[sig] = signal.signal(sig, _raise_interrupted)
    # the name is known before the file exists (O_EXCL: a new file, never a
    # planted one), so an interruption anywhere below finds and removes it
    tmp = os.path.join(os.path.dirname(target) or ".", ".tinyllm-tmp-" + secrets.token_hex(6))
    fd, done = -1, False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            fd = -1
            for chunk in ([chunks] if isinstance(chunks, (bytes, bytearray, memoryview)) else chunks):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        done = True  # (a signal from here on finds the file in place)
    except OSError as e:
        raise ToolError(f"{printable(path)}: cannot write: {e.strerror or e}") from None
    except _Interrupted as e:  # SIGTERM/SIGHUP: removed, then the process ends by the signal
        if not done:
            _remove(tmp)
        done = True
        signal.signal(e.args[0], signal.SIG_DFL)
        os.kill(os.getpid(), e.args[0])
    finally:  # any other failure, Ctrl-C included
        if fd >= 0:
            os.close(fd)
        if not done:
            _remove(tmp)
        for sig, h in handlers.items():
            signal.signal(sig, h)


def main_guard(prog, fn):
    """Runs fn() as a tool's main: ToolError and any other failure end as one
    line on stderr and exit 1 (Ctrl-C: exit 130); `--debug` in argv or
    TINYLLM_DEBUG=1 shows the traceback of an unexpected failure."""
    debug = "--debug" in sys.argv or os.environ.get("TINYLLM_DEBUG") == "1"
    if "--debug" in sys.argv:
        sys.argv.remove("--debug")
    try:
        fn()
    except ToolError as e:
        print(f"{prog}: {printable(e, 600)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing written", file=sys.stderr)
        sys.exit(130)
    except MemoryError:
        print(f"{prog}: out of memory", file=sys.stderr)
        sys.exit(1)
    except RecursionError:
        print(f"{prog}: the input is nested too deeply (a damaged or hostile file)", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - the one place a traceback is turned into a line
        if debug:
            traceback.print_exc()
        else:
            where = traceback.extract_tb(e.__traceback__)[-1]
            print(f"{prog}: unexpected input ({type(e).__name__}: {printable(e, 300)}, at "
                  f"{os.path.basename(where.filename)}:{where.lineno}; --debug shows the traceback)", file=sys.stderr)
        sys.exit(1)
