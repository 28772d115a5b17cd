/** The help texts; `pgplay --help` and `pgplay help <command>`. */
export const MAIN_HELP = `pgplay: declarative playbooks for PostgreSQL disaster recovery

Usage:
  pgplay run <playbook.yml> [options]     run a playbook
  pgplay plan <playbook.yml> [options]    what would change (run --check --diff); changes nothing
  pgplay validate <file.yml ...>          schema + semantic checks of playbooks and inventories
  pgplay lab up|down|status [--dir D] [--pg-version N] [--base-port P]
                                          the embedded local topology
  pgplay schema [playbook|inventory]      print the JSON Schema
  pgplay history [--limit N]              past runs from the run journal
  pgplay drills [--cluster C]             past drills: verdict, RTO and its trend, RPO, backup set
  pgplay report <run-id> [--format F]     a drill's report rebuilt from the journal (json text md junit html)
  pgplay evidence verify|export          tamper-evident run records (hash chain, signed export)
  pgplay status [-i inventory.yml]        DR health in one command (exit 0 ok, 1 warning, 2 critical)
  pgplay docs <playbook> [-i inv] [-p k=v] a playbook as a Markdown runbook
  pgplay schedule <playbook> --every daily --at 01:30 [--cron | --install | --kubernetes --image I]
                                          a systemd service+timer pair, a crontab line or a CronJob
  pgplay playbooks [--output json]        the shipped playbooks and their params
  pgplay help <command>                   help for one command
  pgplay --version

Exit codes: 0 success, 1 a step failed, 2 invalid input, 3 refused by a guard or lock, 130 interrupted.
Set PGPLAY_DEBUG=1 to see stack traces of internal errors.
`;

export const COMMAND_HELP: Record<string, string> = {
  run: `Usage: pgplay run <playbook.yml> [options]

The playbook is a file; a bare name (nightly-backup.yml, or nightly-backup) that is no file in the
current directory runs the playbook pgplay ships under that name (pgplay playbooks lists them).

Options:
  -i, --inventory FILE   inventory (else the playbook's inventory:, PGPLAY_INVENTORY,
                         inventory.yml beside the playbook, or the lab's when a lab is up)
  -p, --param KEY=VALUE  set a playbook parameter (repeatable)
  --check                call only the read-only checks; change nothing
  --diff                 show unified diffs of files that change
  --limit HOST,...       only these hosts (names, roles or all); one no step runs on is an error
  --tags TAG,...         only steps with one of these tags (and steps tagged always); a tag no
                         step has is an error
  --from STEP            start at this step id (<include-id>/<step-id> inside an include)
  --resume [RUN-ID]      continue a failed or interrupted run (default: the last run of this
                         playbook): re-gathers facts, skips the step/host pairs that succeeded;
                         pgplay history lists the run ids
  --yes                  confirm destructive steps without asking
  --forks N              hosts in parallel per step (default 10)
  --output human|json    human (default) or one JSON event per line (errors too)
  --report FILE          write a JSON report of the run
  --metrics FILE         write the run's Prometheus metrics (node_exporter textfile), atomically
  --state-dir DIR        run journal and locks (default ~/.local/state/pgplay, or
                         PGPLAY_STATE_DIR)
  --force                take over a stale cluster lock (its run is no longer running)
  --timeout DURATION     default step timeout (default 1h); a step's timeout: wins
  --grace DURATION       after Ctrl-C, how long running steps may finish (default 10s)
  -v, --verbose          show progress lines of each step

One run at a time per cluster: a run holds a lock in the state directory and a second one exits 3
naming the holder. Every run is journaled there (pgplay history). Ctrl-C stops launching steps, lets
running ones finish within --grace, records the journal and exits 130; Ctrl-C again exits at once.
`,
  plan: `Usage: pgplay plan <playbook.yml> [options]

Same options as run; implies --check --diff. Nothing is changed on any host, so a plan does not
take the cluster lock: it may run while another run holds it.

--export-shell FILE writes the plan as a POSIX shell script (mode 0600) for when pgplay cannot run:
the commands each action would run, in parts of consecutive steps on one host, in plan order
(sh FILE 1 on the first part's host, then sh FILE 2 on the next's, ...), the checks as comments,
secrets as environment references. An action that cannot export fails it (exit 2), naming the step.
`,
  playbooks: `Usage: pgplay playbooks [--output human|json]

The playbooks pgplay ships, each with its description and params (type, allowed values, default or
required). Run one by name: pgplay run nightly-backup.yml (a file of that name in the current
directory wins).
`,
  validate: `Usage: pgplay validate <file.yml ...> [-i inventory.yml]

Checks playbooks and inventories against their JSON Schemas and for semantic errors
(unknown hosts or roles, duplicate step ids, missing templates, ...). Exit 2 on any error.
`,
  lab: `Usage: pgplay lab up|down|status [options]

up      build the embedded topology on this machine: db1 (primary with sample data), bk1 (the
        pgBackRest repository, Barman, or pg_basebackup), db2 (standby slot) and drill1 (drill host), on
        loopback ports; builds it with playbooks/lab.yml; running it again changes nothing
down    stop every lab server (by the pid in its postmaster.pid) and remove the lab directory
status  show the lab's hosts and whether each server runs

Options:
  --dir DIR              the lab directory (default /var/lib/pgplay-lab as root, else
                         ~/.local/share/pgplay-lab; PGPLAY_LAB_DIR; down/status: the lab that is up)
  --pg-version N         PostgreSQL major (default 15), from /usr/lib/postgresql/N/bin
  --bindir DIR           PostgreSQL binaries (initdb, pg_ctl, postgres, psql) elsewhere
  --base-port PORT       db1, db2 and drill1 listen on PORT, PORT+1, PORT+2 (default 15400)
  --backup-tool TOOL     pgbackrest, barman or basebackup (default: pgbackrest when installed and
                         new enough, else basebackup); barman: Barman 3.4 on this machine with
                         the lab's own barman.conf, refused where it cannot serve --pg-version
  --output human|json    up: the run's events as JSON lines; status/down: one JSON object
  -v, --verbose          show progress lines of each step

The lab's inventory is used by pgplay run when no other inventory is given (a pointer in the
state directory; PGPLAY_STATE_DIR moves it).
`,
  schema: `Usage: pgplay schema [playbook|inventory]

Prints the JSON Schema pgplay validates with (the same as schemas/*.schema.json).
`,
  history: `Usage: pgplay history [--limit N] [--state-dir DIR] [--output human|json]

Lists past runs from the run journal, newest first (default 20): id, start time, status
(ok, failed, refused, interrupted, invalid; running; incomplete when the process died), the
changed and failed step/host counts, and the playbook. Resume one with pgplay run PLAYBOOK --resume ID.
`,
  docs: `Usage: pgplay docs <playbook.yml> [-i inventory.yml] [-p key=value ...] [-o FILE]

Writes the playbook as a Markdown runbook (stdout, or FILE): what it does, its params, what is
destructive (as the actions and steps declare it), and each step with its hosts, action, guards and
conditions. With -i the hosts each step touches are named for that inventory; -p values render the
patterns that depend on them. npm run docs regenerates docs/ for the shipped playbooks.
`,
  schedule: `Usage: pgplay schedule <playbook.yml> --every hourly|daily|weekly [--at HH:MM] [--day Mon..Sun]
         [-i inventory.yml] [-p key=value ...] [--randomized-delay 10m] [--state-dir DIR] [--metrics FILE]
         [--environment-file FILE] [--install [--unit-dir /etc/systemd/system] | --cron]
         [--kubernetes --image IMAGE [--namespace NS] [--time-zone Etc/UTC] [--state-claim PVC]]

Prints a systemd service and timer pair that runs the playbook (Persistent=true, RandomizedDelaySec,
output to the journal); --install writes them to --unit-dir; --cron prints a crontab line instead.
The playbook, inventory and params are checked now, as a run checks them (exit 2). --at is the minute
with --every hourly. Secret params cannot be scheduled; the inventory's {env} secrets come from
--environment-file (systemd's EnvironmentFile=). --kubernetes prints a CronJob (concurrencyPolicy
Forbid) running IMAGE (the Dockerfile's) with the inventory from a ConfigMap and the secrets from a
Secret, by name; the kubectl commands that create them head the manifest.
`,
  drills: `Usage: pgplay drills [--cluster C] [--state-dir DIR] [--output human|json]

The drill reports stored under <state-dir>/drills, oldest first: when, cluster, verdict, RTO and its change
against the previous passed drill (SLOWDOWN beyond the inventory's drills.rtoRegression, default 25 %),
RPO, the backup set restored, the target and the run id.
`,
  report: `Usage: pgplay report <run-id> [--format json|text|md|junit|html] [--state-dir DIR]

Rebuilds a drill's report from the run's journal (pgplay history lists the run ids) and prints it.
`,
  evidence: `Usage: pgplay evidence verify [--state-dir DIR] [--output human|json]
       pgplay evidence export --since DURATION DIR [--key FILE] [--state-dir DIR]

Every run's records (its journal and the reports stored for it) are sealed when it ends: a manifest in
<state-dir>/evidence/ holds their SHA-256 sums and the SHA-256 of the manifest sealed before it.

verify   follows the chain and checks every sum and link; exits 1 naming each record that was changed
         or removed, and each manifest that was changed, removed or left out of the chain.
export   copies the records and manifests of the runs sealed within --since (e.g. 90d) into DIR (new or
         empty) with an index, EVIDENCE.json, holding the SHA-256 of every file and the chain's newest
         manifest. --key signs the index with ssh-keygen -Y sign (namespace pgplay-evidence); check it with
         ssh-keygen -Y verify -f allowed_signers -I <identity> -n pgplay-evidence -s EVIDENCE.json.sig < EVIDENCE.json
         Refuses (exit 3) when the evidence does not verify.
`,
  status: `Usage: pgplay status [-i inventory.yml] [--output human|json] [--metrics FILE] [--state-dir DIR]

The cluster's disaster-recovery posture, read-only: hosts and roles, age of the newest backups
(backup.maxAge), WAL archiving, the PITR window (backup.pitrWindow), the last verify and the last
drill (from the run journal; drills.maxAge), repository free space, replication lag
(replication.maxLag), replication slots (replication.maxSlotRetainedWal) and clock skew
(monitoring.maxClockSkew). A table per check; --output json for machines; --metrics FILE writes a
Prometheus textfile (atomically) for node_exporter's textfile collector.

The inventory is -i, else PGPLAY_INVENTORY, else inventory.yml here, else the lab's.
Exit codes (Nagios): 0 ok, 1 warning, 2 critical (an unreachable host is critical); bad input is 2.
`,
};
