"""creneau_stack - start and drive a whole creneau stack for integration tests.

The stack is started the way the README starts it: through deploy/creneau,
in a scratch CRENEAU_HOME with free ports, using the binaries already built
in CRENEAU_BUILD_DIR. Every process it starts is stopped by pid on exit.

API (implemented by the deploy work; tests code against it):

    with Stack(replicas={"booking": 2}) as s:   # up on enter, down on exit
        s.url                     # "http://127.0.0.1:<port>"
        s.home                    # scratch CRENEAU_HOME
        status, headers, body = s.http("GET", "/v1/health", body=None,
                                       headers=None, raw=None)
                                  # body: parsed JSON (or None); raw=bytes
                                  # sends exactly those bytes as the body
        s.stop_service("booking")          # SIGTERM, wait
        s.kill_service("booking", replica=1)  # SIGKILL one replica
        s.start_service("booking")         # start again (all replicas down)
        s.pg_stop(); s.pg_start()          # the embedded PostgreSQL
        s.psql(sql, role="booking")        # run SQL as a service's role
                                           # -> (returncode, stdout, stderr)
        s.env("booking")                   # the daemon's environment (dict)
        s.wait_healthy(timeout=30)
        s.log("booking")                   # text of the daemon's log
"""
