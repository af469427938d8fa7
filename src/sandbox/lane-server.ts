/**
 * The program a grading lane runs inside its sandbox: it takes jobs one at a time on stdin
 * (a JSON line each) and runs each as a fresh process in /work, with the job's own limits,
 * environment and wall clock, as runSandboxed would. Between jobs it kills whatever the job
 * left running, empties /work and /tmp and removes System V IPC objects, so the next job
 * starts as in a new sandbox. Each job runs as PID 2 of a PID namespace of its own, under a
 * small init that reports its status, as PID 1 of a sandbox of its own would. The lane keeps
 * PID 1's privileges and each job gives them up
 * before it runs, as setpriv does for a sandbox of its own: root mode, the lane's slot uid,
 * no groups; rootless, the namespace's root with securebits that keep it without
 * capabilities; both with an empty bounding set, no capabilities and no_new_privs. The lane
 * is non-dumpable (no job can trace it or open its fds or /proc files), and before each job
 * it checks that nothing changed its limits, priority or CPU set; if something did (a
 * rootless job shares its uid), it stops and the host grades what is left one sandbox each.
 *
 * Replies go to the lane's own stdout, each line prefixed with a tag the host sent first,
 * which no job can see. Protocol: host → lane, line 1 the tag, then one job per line;
 * lane → host, per job `TAG{"start":true}` then `TAG{result}`; `TAG{"broken": why}` before
 * it stops.
 */
export const LANE_SERVER_PY = String.raw`import atexit, base64, builtins, ctypes, json, os, resource, select, shutil, signal, sys, time, types
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(4, 0, 0, 0, 0)   # PR_SET_DUMPABLE 0
libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: what a job orphans is ours to reap
SELF = os.getpid()
# Killing "everything but PID 1 and me" is only right inside a sandbox's PID namespace, where
# the lane is nearly alone (a host's /proc shows kernel threads too): refuse to run elsewhere.
if len([p for p in os.listdir("/proc") if p.isdigit()]) > 4:
    sys.stderr.write("lane server: not inside a sandbox's PID namespace; refusing to run\n")
    sys.exit(2)
jobs = os.fdopen(os.dup(0), "rb")
reply_fd = os.dup(1)
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
tag = jobs.readline().strip().decode()

def reply(obj):
    data = (tag + json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(reply_fd, data):]

LIMITS = [resource.RLIMIT_NPROC, resource.RLIMIT_CPU, resource.RLIMIT_AS, resource.RLIMIT_FSIZE,
          resource.RLIMIT_NOFILE, resource.RLIMIT_CORE]
def state():
    return ([resource.getrlimit(r) for r in LIMITS], os.getpriority(os.PRIO_PROCESS, 0),
            sorted(os.sched_getaffinity(0)))
START = state()

def live(exclude):
    """The processes this PID namespace's /proc shows, without zombies and exclude."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in exclude:
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                s = f.read()
        except OSError:
            continue
        if s[s.rindex(")") + 2] != "Z":
            out.append(int(name))
    return out

def others():
    return live((1, SELF))

def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return

def kill_all():
    for _ in range(1000):
        reap()
        left = others()
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.001)
    raise RuntimeError("processes survive SIGKILL")

def empty(path):
    for name in os.listdir(path):
        p = os.path.join(path, name)
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o700)
                empty(p)
                os.rmdir(p)
            else:
                os.unlink(p)
        except OSError:
            pass

def remove_ipc():
    for kind, fn, extra in (("shm", libc.shmctl, ()), ("msg", libc.msgctl, ()), ("sem", libc.semctl, (0,))):
        try:
            lines = open("/proc/sysvipc/" + kind).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            ident = int(line.split()[1])
            if kind == "sem":
                fn(ident, 0, 0, None)
            else:
                fn(ident, 0, None)

def clean():
    kill_all()
    empty("/work")
    empty("/tmp")
    remove_ipc()
    if os.listdir("/work") or os.listdir("/tmp"):
        raise RuntimeError("could not empty /work and /tmp")

class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]

def check(rc, what):
    if rc != 0:
        raise OSError(ctypes.get_errno(), what)

def drop(uid):
    for cap in range(64):
        if libc.prctl(24, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:  # PR_CAPBSET_DROP
            break
    if uid is None:
        # SECBIT_NOROOT, _NOROOT_LOCKED, _NO_SETUID_FIXUP, _NO_SETUID_FIXUP_LOCKED
        check(libc.prctl(28, 0x0F, 0, 0, 0), "securebits")
    else:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    check(libc.capset(ctypes.byref(CapHeader(0x20080522, 0)), (CapData * 2)()), "capset")
    check(libc.prctl(38, 1, 0, 0, 0), "no_new_privs")

def child(job, i_r, o_w, e_w):
    try:
        os.dup2(i_r, 0)
        os.dup2(o_w, 1)
        os.dup2(e_w, 2)
        os.closerange(3, 1 << 16)
        for s in range(1, signal.NSIG):
            try:
                signal.signal(s, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.setpgid(0, 0)
        os.chdir("/work")
        os.umask(0o022)
        lim = job["limits"]
        resource.setrlimit(resource.RLIMIT_NPROC, (lim["nproc"], lim["nproc"]))
        resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu"], lim["cpu"] + 1))
        resource.setrlimit(resource.RLIMIT_AS, (lim["as"], lim["as"]))
        resource.setrlimit(resource.RLIMIT_FSIZE, (lim["fsize"], lim["fsize"]))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        drop(job["drop"]["uid"])
    except BaseException as e:
        os.write(2, ("lane: could not set up the job: %s\n" % e).encode())
        os._exit(125)
    argv = job["argv"]
    if job["inProcess"] and same_python(job["env"]):
        run_script(argv[2], job["env"])
    try:
        os.execvpe(argv[0], argv, job["env"])
    except OSError as e:
        os.write(2, ("%s: '%s': %s\n" % (job["envPath"], argv[0], e.strerror)).encode())
        os._exit(127 if e.errno == 2 else 126)

def same_python(env):
    found = shutil.which("python3", path=env.get("PATH", ""))
    return found is not None and os.path.realpath(found) == os.path.realpath(sys.executable)

def run_script(path, env):
    """python3 -I PATH, without starting a new interpreter: this one, forked, runs it with a
    fresh __main__, the job's environment and Python's own start-up signal handlers."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [path]
    main = types.ModuleType("__main__")
    main.__file__ = os.path.abspath(path)
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    code = 0
    try:
        with open(path, "rb") as f:
            source = f.read()
        exec(compile(source, main.__file__, "exec"), main.__dict__)
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code & 0xFF
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        kind, value, tb = sys.exc_info()
        # Printed without this function's own frame, as the interpreter would.
        value.__traceback__ = tb.tb_next
        sys.excepthook(kind, value, tb.tb_next)
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(code)

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
OWN_PIDNS = os.open("/proc/self/ns/pid", os.O_RDONLY)

def job_init(job, i_r, o_w, e_w, s_w):
    """PID 1 of a job's namespace: its own /proc, signals from the job ignored (through a
    handler that does nothing, which the job does not inherit past exec), the job as PID 2;
    reports the job's wait status and how many processes it left, then exits, and the
    kernel kills what is left."""
    try:
        # Only the job's own pipes: an inherited write end of its stdin would never let it end.
        keep = sorted({i_r, o_w, e_w, s_w})
        low = 3
        for fd in keep:
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, 1 << 16)
        check(libc.unshare(CLONE_NEWNS), "unshare")
        # The sandbox's mounts are private already, so this one stays in the job's namespace.
        check(libc.mount(b"proc", b"/proc", b"proc", 2 | 4 | 8, None), "mount proc")
        for sig in range(1, 32):
            if sig not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
                signal.signal(sig, lambda *_: None)
        job_pid = os.fork()
        if job_pid == 0:
            os.close(s_w)
            child(job, i_r, o_w, e_w)
        for fd in (i_r, o_w, e_w):
            os.close(fd)
        while True:
            pid, status = os.waitpid(-1, 0)
            if pid == job_pid:
                break
        os.write(s_w, b"%d %d" % (status, len(live((1,)))))
    except BaseException as e:
        os.write(e_w, ("lane: could not start the job: %s\n" % e).encode())
    os._exit(0)

def run(job):
    owner = job["drop"]["uid"]
    for rel, data in job["files"].items():
        path = os.path.join("/work", rel)
        parent = os.path.dirname(path)
        made = []
        while not os.path.isdir(parent):
            made.append(parent)
            parent = os.path.dirname(parent)
        for d in reversed(made):
            os.mkdir(d, 0o755)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        os.chmod(path, 0o644)
        # The job's own files, as if it had unpacked them itself.
        if owner is not None:
            for p in made + [path]:
                os.chown(p, owner, owner)
    stdin = base64.b64decode(job["stdin"]) if job["stdin"] is not None else None
    i_r, i_w = os.pipe() if stdin is not None else (os.open("/dev/null", os.O_RDONLY), None)
    o_r, o_w = os.pipe()
    e_r, e_w = os.pipe()
    s_r, s_w = os.pipe()
    t0 = time.monotonic()
    # The job gets a PID namespace of its own under a small init, as a sandbox of its own
    # would have: it sees only its init and its own processes.
    check(libc.unshare(CLONE_NEWPID), "unshare")
    pid = os.fork()
    if pid == 0:
        job_init(job, i_r, o_w, e_w, s_w)
    check(libc.setns(OWN_PIDNS, CLONE_NEWPID), "setns")
    for fd in (i_r, o_w, e_w, s_w):
        os.close(fd)
    cap = job["maxOutputBytes"]
    deadline = t0 + job["timeoutMs"] / 1000
    bufs = {o_r: bytearray(), e_r: bytearray()}
    reading = set(bufs)
    pending = stdin
    if i_w is not None:
        os.set_blocking(i_w, False)
    timed_out = output_killed = False
    status = None
    while True:
        if status is None:
            got, st = os.waitpid(pid, os.WNOHANG)
            if got:
                status = st
        if status is not None:
            break
        now = time.monotonic()
        if now >= deadline:
            timed_out = True
            break
        wants = [i_w] if pending is not None else []
        # The status pipe wakes us as the init ends (its report, then its exit closing it).
        r, w, _ = select.select([*reading, s_r], wants, [], min(deadline - now, 0.02))
        for fd in w:
            try:
                n = os.write(fd, pending[:65536])
                pending = pending[n:]
            except OSError:
                pending = b""
            if not pending:
                os.close(i_w)
                i_w = pending = None
        for fd in r:
            if fd == s_r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                reading.discard(fd)
                continue
            bufs[fd] += chunk
            if len(bufs[fd]) > cap:
                output_killed = True
        if output_killed:
            break
    if status is None:
        os.kill(pid, signal.SIGKILL)  # the job's init: the kernel kills its whole namespace
        os.waitpid(pid, 0)
    kill_all()
    report = b""
    while True:
        chunk = os.read(s_r, 64)
        if not chunk:
            break
        report += chunk
    os.close(s_r)
    # What the init saw: the job's wait status and what it left running.
    status, left = map(int, report.split()) if report and status is not None else (None, 0)
    if i_w is not None:
        os.close(i_w)
    for fd, buf in bufs.items():
        os.set_blocking(fd, False)
        try:
            while fd in reading and len(buf) <= cap:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
        except OSError:
            pass
        os.close(fd)
    out, err = bufs[o_r], bufs[e_r]
    # The shell that runs a job alone reports a fatal signal on its stderr; so does the lane.
    if status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGINT, signal.SIGPIPE):
            err += (signal.strsignal(sig) + "\n").encode()
    rc = None
    if status is not None:
        rc = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return {"rc": rc, "left": left, "timedOut": timed_out, "outputKilled": output_killed,
            "durationMs": (time.monotonic() - t0) * 1000,
            "stdout": base64.b64encode(bytes(out[:cap])).decode(),
            "stderr": base64.b64encode(bytes(err[:cap])).decode()}

try:
    clean()
    while True:
        line = jobs.readline()
        if not line:
            break
        if state() != START:
            reply({"broken": "a job changed the lane's limits, priority or CPU set"})
            break
        reply({"start": True})
        result = run(json.loads(line))
        clean()
        reply(result)
except BaseException as e:
    try:
        reply({"broken": "lane failed: %s" % e})
    except BaseException:
        pass
`;
