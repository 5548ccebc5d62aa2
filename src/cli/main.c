/*
 * main.c - projstore's entry point: global options, command dispatch, help.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <stdlib.h>
#include <string.h>

const struct command ps_commands[] = {
	{ "init", cmd_init, "init [STORE] [--compression zstd[:LEVEL]|lz4|none]",
	  "Create a new, empty store (default: $PROJSTORE_STORE, else ./projstore-data).\n" },
	{ "save", cmd_save,
	  "save PROJECT DIR [--uid N --gid N] [--compression C] [--exclude PATTERN]...\n"
	  "               [--cross-filesystems] [--lock-timeout SECONDS] [--cache-dir DIR] [--threads N] [--json]",
	  "Snapshot DIR as the newest version of PROJECT.\n"
	  "  --uid N, --gid N      store every entry as owned by N\n"
	  "  --compression C       zstd[:1-19], lz4 or none (default: project setting, else store's)\n"
	  "  --exclude PATTERN     skip matching entries (glob; without '/' it matches names at any\n"
	  "                        depth, with '/' the path relative to DIR); repeatable\n"
	  "  --cross-filesystems   descend into other filesystems mounted inside DIR\n"
	  "  --lock-timeout S      wait up to S seconds for another save of PROJECT to finish\n"
	  "  --cache-dir DIR       file cache directory (default $PROJSTORE_CACHE_DIR, /var/cache/projstore)\n"
	  "Exit: 0 saved; 3 saved, some entries unreadable; 4 saved, over quota; 5 both;\n"
	  "      6 locked by another save; 1 failed (nothing changed).\n"
	  "\n"
	  "save PROJECT [--wait [--timeout SECONDS]] [--json]  (one argument)\n"
	  "Ask the agent of the host where PROJECT is deployed to save it now (nothing is\n"
	  "published when nothing changed). Exit: 0 done; 1 the save failed (the message says\n"
	  "why); 7 not deployed; 10 --timeout ran out or the host's agent is not answering.\n" },
	{ "snapshots", cmd_snapshots, "snapshots PROJECT [--json]",
	  "List the snapshots of PROJECT: name, age, files, logical size, new bytes stored.\n" },
	{ "ls", cmd_ls, "ls PROJECT[@SNAPSHOT] [PATH] [-l] [--json]",
	  "List a directory of a snapshot (default: latest, the root).\n" },
	{ "cat", cmd_cat, "cat PROJECT[@SNAPSHOT] PATH", "Write one file of a snapshot to stdout.\n" },
	{ "diff", cmd_diff, "diff PROJECT@A PROJECT@B [--json]",
	  "List paths added (A), removed (D) and modified (M) from snapshot A to snapshot B.\n" },
	{ "restore", cmd_restore,
	  "restore PROJECT[@SNAPSHOT] TARGET [PATH...] [--uid N --gid N] [--no-cache] [--threads N] [--json]",
	  "Restore a snapshot into TARGET, which must not exist or be an empty directory.\n"
	  "With PATHs, restore only those into TARGET (which may exist): each path is written\n"
	  "under a temporary name and renamed over what is there.\n"
	  "  --uid N, --gid N   every restored entry belongs to N\n"
	  "  --no-cache         do not record the restored files in the file cache\n" },
	{ "stats", cmd_stats, "stats [PROJECT] [--json]",
	  "Logical and stored bytes, compressratio, dedupratio, chunks, snapshots.\n" },
	{ "quota", cmd_quota, "quota PROJECT [SIZE|none] [--json]",
	  "Show or set a project's quota (binary units: 4G = 4 GiB). A project over its quota is\n"
	  "still saved; save then exits 4.\n" },
	{ "check", cmd_check, "check [--read-data] [--repair-from OTHER_STORE] [PROJECT...] [--json]",
	  "Verify the store's structure; with --read-data also every object's checksum.\n"
	  "  --repair-from OTHER_STORE   replace what is damaged or missing with verified copies\n"
	  "                       from another store (a directory, gluster://, ssh://); damaged packs\n"
	  "                       are rewritten without their damage; then check again\n"
	  "Exit: 0 clean (with --repair-from: clean after the repair); 8 damage found (listed with\n"
	  "the files and snapshots affected; with --repair-from: damage remains, each object that\n"
	  "could not be repaired named); 1 the other store cannot be reached.\n" },
	{ "exclude", cmd_exclude, "exclude PROJECT [PATTERN...|--clear]",
	  "Show or set the exclude patterns stored for PROJECT (used by every save).\n" },
	{ "mount", cmd_mount,
	  "mount PROJECT MOUNTPOINT [--allow-other] [--uid N] [--gid N] [--foreground]\n"
	  "               [--tree-cache SIZE] [--chunk-cache SIZE] [--readahead N] [--threads N]",
	  "Mount every snapshot of PROJECT read-only at MOUNTPOINT (FUSE): one directory per\n"
	  "snapshot, named by its name, and 'latest', a symlink to the newest. Files keep their\n"
	  "modes, owners, times, xattrs and hardlinks; data is fetched only when read. New\n"
	  "snapshots appear without remounting. Damaged data reads as EIO (that file only).\n"
	  "Runs in the background once mounted; unmount with 'fusermount3 -u MOUNTPOINT'\n"
	  "(or SIGINT/SIGTERM to the process).\n"
	  "  --allow-other        let other users in (modes are enforced; needs user_allow_other\n"
	  "                       in /etc/fuse.conf unless root)\n"
	  "  --uid N, --gid N     show every entry as owned by N\n"
	  "  --foreground, -f     stay in the foreground (logs damage on stderr)\n"
	  "  --tree-cache SIZE    decoded directory trees kept in memory (default 64M)\n"
	  "  --chunk-cache SIZE   decompressed file data kept in memory (default 64M)\n"
	  "  --readahead N        chunks fetched ahead of sequential reads (default 8, 0 = off)\n"
	  "  --threads N          FUSE worker threads (default 8)\n"
	  "Exit: 0 mounted (with --foreground: unmounted again); 7 no such project; 1 cannot mount.\n" },
	{ "prune", cmd_prune,
	  "prune PROJECT|--all [--keep-last N] [--keep-within DURATION] [--keep-15min N] [--keep-hourly N]\n"
	  "                [--keep-daily N] [--keep-weekly N] [--keep-monthly N] [--dry-run] [--json]",
	  "Remove the snapshots the retention rules do not keep (given, else the project's stored\n"
	  "policy, else the store default). A snapshot is kept when any rule keeps it; the newest\n"
	  "is always kept. N = -1: no limit. Buckets are UTC (weeks: ISO, Monday to Sunday).\n"
	  "  --keep-last N          the N newest\n"
	  "  --keep-within D        all within D of the newest (e.g. 36h, 7d, 1y6m; m = months, min)\n"
	  "  --keep-15min/hourly/daily/weekly/monthly N\n"
	  "                         the newest of each of the N newest such periods with snapshots\n"
	  "  --all                  every project, each with its stored policy (or these rules)\n"
	  "  --dry-run              print what would be removed, remove nothing\n"
	  "The data is freed by 'projstore gc'.\n" },
	{ "policy", cmd_policy,
	  "policy PROJECT|--default [--keep-... options as for prune] [--clear] [--json]",
	  "Show, set (replacing it) or clear the retention policy stored for PROJECT, or the store\n"
	  "default used by projects without one. 'prune' without --keep-... options uses it.\n" },
	{ "delete", cmd_delete, "delete PROJECT [--purge] [--json]",
	  "Remove every snapshot of PROJECT (its quota, excludes and policy stay unless --purge).\n"
	  "The data is freed by the next 'projstore gc'.\n" },
	{ "gc", cmd_gc, "gc [--dry-run] [--max-repack-ratio R] [--grace SECONDS] [--json]",
	  "Free the space of data no snapshot uses. Phase 1 condemns packs (nothing reachable, or\n"
	  "less than R of their bytes reachable); after the grace period, and once the saves that\n"
	  "started before have finished, phase 2 copies what is reachable again and deletes them.\n"
	  "Safe while saves run. Condemned packs of earlier runs whose time has come are done first.\n"
	  "  --dry-run              report what would be condemned, change nothing\n"
	  "  --max-repack-ratio R   repack packs less than R reachable (default 0.5; 0 = never)\n"
	  "  --grace SECONDS        wait between condemning and deleting (default 900)\n"
	  "Exit: 0 done; 6 another gc runs; 8 the store is damaged (nothing changed; see check).\n" },
	{ "migrate", cmd_migrate,
	  "migrate SRC_ROOT [-j N] [--uid N --gid N] [--quota SIZE|none] [--id-from dirname|info.json]\n"
	  "               [--threads N] [--batch N] [--cache-dir DIR] [--catalog SPEC] [--json]",
	  "Bring existing home directories into the store: every subdirectory of SRC_ROOT is one\n"
	  "project, saved as its newest snapshot, in parallel. Resumable: run it again to import\n"
	  "what changed since (an unchanged project costs a stat walk and publishes nothing) and\n"
	  "what an interrupted run left. While a project is imported it is in maintenance and\n"
	  "leased in the catalog; afterwards it is marked migrated, with an event. A project that\n"
	  "is deployed, or was saved by someone else since its migration, is not touched.\n"
	  "  -j, --jobs N          projects imported at once, each by its own process\n"
	  "                        (default: 2 per core, at most 16)\n"
	  "  --uid N, --gid N      store every entry as owned by N\n"
	  "  --quota SIZE|none     set every project's quota (e.g. 4G)\n"
	  "  --id-from dirname     the directory name is the project id (default)\n"
	  "  --id-from info.json   the \"project_id\" string of SRC_ROOT/DIR/info.json is\n"
	  "  --threads N           worker threads of each save (default: cores / jobs, at least 1)\n"
	  "  --batch N             saves of one process made durable and published together\n"
	  "                        (one pack and index segment; default 16, 1: each on its own)\n"
	  "  --cache-dir DIR       file cache and import markers (DIR/migrate/STORE-ID/PROJECT;\n"
	  "                        default $PROJSTORE_CACHE_DIR, /var/cache/projstore)\n"
	  "A directory whose id is invalid or claimed twice, or that fails, is listed with the\n"
	  "reason; the others go on. An unreadable entry is skipped and listed; the rest of its\n"
	  "project is saved. A progress line is drawn when stderr is a terminal. SIGINT: the\n"
	  "projects in work are finished, then it stops (twice: at once).\n"
	  "Exit: 0 all imported or unchanged; 3 some projects failed or had entries skipped;\n"
	  "      4 some are over quota; 5 both; 130 interrupted (run again to go on);\n"
	  "      1 nothing done (no store, catalog or SRC_ROOT).\n" },
	{ "host", cmd_host,
	  "host add NAME --root DIR [--store URL] [--datacenter DC] [--capacity N] | host state NAME STATE",
	  "Register a compute host in the catalog (or change it: adding an existing name updates it).\n"
	  "  --root DIR          where the host's agent keeps working copies (ROOT/PROJECT)\n"
	  "  --store URL         the store the host uses (default: the agent's own --store); a move\n"
	  "                      to a host with another store syncs the project's snapshots there first\n"
	  "  --datacenter DC     its datacenter (shown, and named in the sync events of moves)\n"
	  "  --capacity N        most projects it takes (default 0 = no limit)\n"
	  "'host state NAME up|draining|disabled': draining and disabled hosts take no new projects;\n"
	  "a disabled host counts as down (its projects can be opened elsewhere).\n"
	  "Exit: 0 done; 2 invalid name, root or state; 7 no such host.\n" },
	{ "hosts", cmd_hosts, "hosts [--json]",
	  "List the hosts: datacenter, projects deployed, capacity, last heartbeat, state (up,\n"
	  "down = no heartbeat for PROJSTORE_HOST_DEAD_SECONDS (30), draining, disabled).\n" },
	{ "where", cmd_where, "where PROJECT [--api URL] [--json]",
	  "Print the host PROJECT is deployed on, read fresh from the catalog; an empty line when\n"
	  "it is not deployed anywhere (deploy it first with 'open'). --json adds status and path.\n"
	  "  --api URL   ask a 'projstore serve' at http://HOST:PORT instead (default $PROJSTORE_API;\n"
	  "              --catalog wins over $PROJSTORE_API): its open catalog connection answers\n"
	  "              in well under a millisecond, where this command would open one of its own\n"
	  "              (PostgreSQL: a new server process each time). Token: $PROJSTORE_API_TOKEN,\n"
	  "              or the file $PROJSTORE_API_TOKEN_FILE (its read token).\n"
	  "Exit: 0; 1 the catalog or the API cannot answer; 2 usage.\n" },
	{ "projects", cmd_projects,
	  "projects [--search TEXT] [--host NAME] [--status S] [--limit N] [--after ID] [--api URL] [--json]",
	  "List the catalog's projects ordered by id: host, status (* = maintenance), size of the\n"
	  "newest snapshot, quota, compression and dedup ratios, age of the newest snapshot.\n"
	  "  --search TEXT   ids containing TEXT (case-insensitive)\n"
	  "  --host NAME     deployed on NAME;  --status S  in status S (stored, deployed, ...)\n"
	  "  --limit N, --after ID   one page of N, starting after ID\n"
	  "  --api URL       ask a 'projstore serve' at http://HOST:PORT (default $PROJSTORE_API;\n"
	  "                  --catalog wins over it); token as for 'where --api'\n" },
	{ "events", cmd_events, "events PROJECT [--limit N] [--json]",
	  "What happened to PROJECT (deployed, saved, failed, moved, ...), when and by whom;\n"
	  "oldest first, the newest N (default 100). --json: newest first.\n" },
	{ "rescan", cmd_rescan, "rescan [PROJECT...] [--json]",
	  "Rebuild the catalog's copy of the store's facts (snapshots, sizes, ratios, quota) from\n"
	  "the store, for every project of the store (or those named): projects saved without a\n"
	  "catalog, or brought by sync, appear. Exit: 0 done; 1 some projects failed (listed).\n" },
	{ "serve", cmd_serve,
	  "serve [--listen ADDR:PORT] [--token-file FILE] [--catalog SPEC] [--store LOCATION]\n"
	  "               [--threads N] [--rate-limit N] [--rate-burst N] [--max-body SIZE]\n"
	  "               [--max-connections N] [--no-store]",
	  "Serve the HTTP JSON API over the catalog (docs/API.md), the dashboard at / and\n"
	  "Prometheus metrics at /metrics, in the foreground until SIGINT or SIGTERM. Requests to\n"
	  "open, save, close or move a project are written to the catalog for the host agents.\n"
	  "  --listen ADDR:PORT   address to listen on (default 127.0.0.1:8470; [::1]:PORT for\n"
	  "                       IPv6; port 0 = any free port, printed at start)\n"
	  "  --token-file FILE    bearer tokens, 'admin TOKEN' or 'read TOKEN' per line, mode 0600.\n"
	  "                       Without it: $PROJSTORE_STATE_DIR/serve-tokens (default\n"
	  "                       /var/lib/projstore), created with fresh tokens when missing\n"
	  "  --catalog SPEC       catalog (default: $PROJSTORE_CATALOG, else catalog.db in a local store)\n"
	  "  --store LOCATION     store for full snapshot listings (without it, or with --no-store,\n"
	  "                       snapshot listings show the catalog's newest snapshot per store)\n"
	  "  --threads N          worker threads, one catalog connection each (default: cores)\n"
	  "  --rate-limit N       requests per second per client address (default 100; 0 = off)\n"
	  "  --rate-burst N       requests allowed at once above the rate (default 2 x rate)\n"
	  "  --max-body SIZE      largest request body (default 16K)\n"
	  "  --max-connections N  open connections at most (default 1024)\n"
	  "Exit: 0 stopped by a signal; 1 cannot start (address in use, catalog, tokens); 2 usage.\n" },
	{ "sync", cmd_sync,
	  "sync SRC DST [PROJECT...] [--dry-run] [--json] [--every DURATION] [--lock-timeout S]\n"
	  "               [--timeout S] [--ssh COMMAND] [--remote-bin PATH]",
	  "Copy to store DST the snapshots of store SRC it lacks (all projects, or the PROJECTs),\n"
	  "with only the objects DST lacks, sent as stored (compressed), each verified (SHA-256)\n"
	  "before DST keeps it. Both sides' snapshots are kept; nothing in DST is overwritten or\n"
	  "deleted; 'latest' is the newest by time. When both stores saved a project since they\n"
	  "last agreed, both snapshots are kept and the conflict is reported. Settings: DST keeps\n"
	  "the ones it has and takes the ones it lacks from SRC (differences are reported).\n"
	  "Crash safe and idempotent: a killed sync is finished by running it again.\n"
	  "SRC, DST: a directory, gluster://..., or ssh://[user@]host[:port]/path (runs\n"
	  "'projstore serve-stdio PATH' there over ssh; encryption and authentication are ssh's).\n"
	  "  --dry-run            report what would be copied; change nothing\n"
	  "  --every DURATION     keep syncing, every DURATION (90s, 5min, 2h, 1d); one log line\n"
	  "                       per event on stderr; SIGTERM/SIGINT stop it at a safe point\n"
	  "  --lock-timeout S     wait up to S seconds for a DST project lock (default 60)\n"
	  "  --timeout S          give up an ssh connection idle for S seconds (default 300)\n"
	  "  --ssh COMMAND        ssh command (default $PROJSTORE_SSH, else ssh), split at blanks\n"
	  "  --remote-bin PATH    projstore at the far end (default $PROJSTORE_REMOTE_BIN, else\n"
	  "                       projstore in its PATH)\n"
	  "With a catalog configured for DST (--catalog, $PROJSTORE_CATALOG, DST/catalog.db), the\n"
	  "run is recorded in its syncs table and the projects it brought are refreshed.\n"
	  "Exit: 0 done (conflicts are reported, not errors); 8 some snapshots not copied because\n"
	  "an object is damaged or missing in SRC (named; nothing damaged was copied); 6 some\n"
	  "projects skipped, locked in DST; 1 failed (connection, store); 2 usage.\n" },
	{ "serve-stdio", cmd_serve_stdio, "serve-stdio PATH",
	  "Plumbing: serve the store at PATH to 'projstore sync' or 'check --repair-from' on\n"
	  "stdin/stdout (the far end of ssh:// locations; docs/FORMAT.md, \"Sync protocol\").\n"
	  "Exit: 0 the client said goodbye or went away; 1 protocol error or no store.\n" },
	{ "agent", cmd_agent,
	  "agent --host NAME [--catalog SPEC] [--store LOCATION] [--autosave-interval DURATION]\n"
	  "               [--autosave-jitter DURATION|PCT%] [--max-parallel N] [--threads N] [--log FILE]\n"
	  "               [--log-max-size SIZE] [--log-keep N] [--lease DURATION] [--poll DURATION]\n"
	  "               [--reconcile-interval DURATION] [--quarantine-keep N] [--quarantine-days N]\n"
	  "               [--cache-dir DIR] [--once] [--verbose] [--hosting]",
	  "The daemon of compute host NAME (registered with 'host add NAME --root DIR'): carries out\n"
	  "what the catalog asks of this host, in the foreground until SIGTERM/SIGINT. Deploys\n"
	  "projects into ROOT/PROJECT (the newest snapshot that restores cleanly; no snapshot = a new\n"
	  "empty home), saves them on request and every autosave interval when they changed, closes\n"
	  "them (save, then remove the copy) and moves them (save here, deploy there); takes over a\n"
	  "move whose old host is down. Heartbeat and polling every --poll. At start, working copies\n"
	  "the catalog places elsewhere go into ROOT/.projstore/quarantine (root only, bounded) and\n"
	  "interrupted operations are resumed. One agent per host and root (ROOT/.projstore/agent.lock).\n"
	  "Durations: 90s, 5m (minutes), 1h, 500ms, 1m30s; a plain number is seconds.\n"
	  "  --store LOCATION        store (default: the host's store URL, else the global store)\n"
	  "  --autosave-interval D   save changed projects every D (default 5m; 0 or off = never)\n"
	  "  --autosave-jitter J     vary each project's time by up to +-J (default 20%)\n"
	  "  --max-parallel N        saves at a time, and operations at a time (default 2 each)\n"
	  "  --threads N             worker threads of each save or restore (default: cores)\n"
	  "  --log FILE              log here instead of stderr, rotated at --log-max-size\n"
	  "                          (default 10M) keeping --log-keep old files (default 3)\n"
	  "  --lease D               lease on a project while working on it (default 60s, or\n"
	  "                          $PROJSTORE_LEASE_SECONDS), renewed every third of it\n"
	  "  --poll D                heartbeat and catalog polling (default 1s)\n"
	  "  --reconcile-interval D  re-check working copies against the catalog (default 30s)\n"
	  "  --quarantine-keep N     quarantined copies kept (default 20); --quarantine-days N (7)\n"
	  "  --cache-dir DIR         file cache (default ROOT/.projstore/cache)\n"
	  "  --once                  one round (operations now pending, one save of each deployed\n"
	  "                          project), then exit\n"
	  "  --verbose               log every autosave, also those that found nothing new\n"
	  "  --hosting               each project as its own user in its own sandbox, under its\n"
	  "                          limits, its copy a btrfs subvolume with a quota-group limit;\n"
	  "                          close/move stop its processes first; usage into the catalog\n"
	  "                          (docs/HOSTING.md; needs root)\n"
	  "Exit: 0 stopped by a signal (or --once done); 6 another agent serves this host or root;\n"
	  "      7 no such host in the catalog; 1 cannot start; 2 usage.\n" },
	{ "open", cmd_open, "open PROJECT [--host NAME] [--allow-older] [--wait [--timeout SECONDS]] [--json]",
	  "Ask for PROJECT to be deployed (on NAME, else on the up host with the most room). The\n"
	  "host's agent restores the newest snapshot that restores cleanly into ROOT/PROJECT (older\n"
	  "ones when it is damaged; an event says which), or makes a new empty home.\n"
	  "When the catalog says another store (another datacenter's) has a newer snapshot than\n"
	  "the host's store, the agent first syncs the project from there; if that store cannot be\n"
	  "read, the open fails and the project stays stored.\n"
	  "  --allow-older       deploy the host's store's newest snapshot anyway (an event warns)\n"
	  "  --wait              wait until it is done, with its progress on a terminal\n"
	  "  --timeout SECONDS   give up waiting after SECONDS (the request stays queued)\n"
	  "Exit: 0 deployed (or queued without --wait); 1 the operation failed (the message says\n"
	  "      why); 7 no such host; 9 another open/close/move of PROJECT is in progress, or it\n"
	  "      is deployed elsewhere (use move); 10 the wait timed out or the host's agent is\n"
	  "      not answering (the message says which).\n" },
	{ "close", cmd_close, "close PROJECT [--wait [--timeout SECONDS]] [--json]",
	  "Ask the host where PROJECT is deployed to save it and remove its working copy; its\n"
	  "location becomes empty. If the save fails the project stays deployed.\n"
	  "Exit as for open; 7 = not deployed.\n" },
	{ "move", cmd_move, "move PROJECT --to NAME [--wait [--timeout SECONDS]] [--json]",
	  "Move PROJECT to host NAME: its host saves it and removes its copy, then NAME deploys\n"
	  "it. If the old host's agent is down (no heartbeat for $PROJSTORE_HOST_DEAD_SECONDS,\n"
	  "default 30, or disabled) NAME takes the move over and deploys the newest snapshot in\n"
	  "the store. A project that is not deployed is opened on NAME. Of two moves of one\n"
	  "project at the same time exactly one is accepted; the other exits 9.\n"
	  "When NAME's store (host add --store URL) is not the old host's, the old host first syncs\n"
	  "the project's snapshots to it, after its last save and under the project's lease; if that\n"
	  "fails, the move fails and the project stays deployed on the old host. A takeover syncs\n"
	  "from the old host's store, and is refused when that store cannot be read and has newer\n"
	  "snapshots than NAME's.\n"
	  "Exit as for open.\n" },
	{ "run", cmd_run, "run PROJECT [--root DIR] [--host NAME] [--cwd DIR] [--env NAME=VALUE]... [--] COMMAND [ARG...]",
	  "Run COMMAND in PROJECT's sandbox, on the host where it is deployed (as root): as the\n"
	  "project's own user, in its own mount, PID, UTS, IPC and network namespaces, under its\n"
	  "limits; home /home/project (the working copy), /data read-only and /scratch read-write\n"
	  "when those volumes are set; other projects do not exist inside. The sandbox starts with\n"
	  "the first command and lives until the project is stopped. Signals sent to projstore are\n"
	  "passed on. Put COMMAND after -- when it has options of its own.\n"
	  "  --root DIR, --host NAME  where the project is (default: the catalog's location)\n"
	  "  --cwd DIR                working directory inside (default /home/project)\n"
	  "  --env NAME=VALUE         set in COMMAND's environment (repeatable); the rest is HOME,\n"
	  "                           USER, LOGNAME, SHELL, PATH, PROJSTORE_PROJECT, TERM, LANG, TZ\n"
	  "Exit: COMMAND's exit code, or death by COMMAND's signal; 125 projstore failed (usage,\n"
	  "      not deployed here, no sandbox); 126 COMMAND cannot be executed; 127 not found.\n" },
	{ "limits", cmd_limits,
	  "limits PROJECT [--cpu CORES|none] [--memory SIZE|none] [--io-weight W|default] [--pids N|none]\n"
	  "               [--network none|outbound] [--json]",
	  "Show or change PROJECT's resource limits. They are kept in the catalog and applied at once\n"
	  "when PROJECT is deployed on this machine (running processes included), else by its host's\n"
	  "agent within a poll interval.\n"
	  "  --cpu CORES       CPU time, in cores (0.5 = half of one core)\n"
	  "  --memory SIZE     memory (RAM, and swap where accounted); past it the kernel's OOM\n"
	  "                    killer ends a process of this project only\n"
	  "  --io-weight W     block I/O weight 1-10000 (default 100; needs a weight-aware I/O scheduler)\n"
	  "  --pids N          processes and threads at most\n"
	  "  --network M       none (own loopback only, the default) or outbound (NAT to the outside;\n"
	  "                    never to this host's own services)\n"
	  "The disk quota is the project's quota ('projstore quota'), enforced on btrfs hosts.\n"
	  "Exit: 0 shown/changed; 7 unknown project; 1 stored but not applied; 2 usage.\n" },
	{ "top", cmd_top, "top [--host NAME] [--interval SECONDS] [--root DIR] [--json]",
	  "CPU, memory, block I/O, tasks, disk and OOM kills per project. Without --host: this\n"
	  "machine's cgroup counters, sampled twice --interval apart (default 1; 0 = no CPU%).\n"
	  "With --host: what that host's agent last reported to the catalog.\n"
	  "Exit: 0; 1 no usable cgroups or catalog; 2 usage.\n" },
	{ "volume", cmd_volume, "volume [list] | volume add data|scratch PATH | volume rm data|scratch  [--host NAME] [--json]",
	  "The shared areas mounted into every sandbox: 'data' read-only at /data, 'scratch'\n"
	  "read-write at /scratch. PATH is a directory on the hosts. With --host the entry is for that\n"
	  "host only (it wins over the one for every host). Sandboxes started afterwards get them.\n"
	  "Exit: 0; 7 rm of a volume that is not set; 2 usage.\n" },
	{ "hosting", cmd_hosting,
	  "hosting prepare|apply|stop|teardown|usage PROJECT [--root DIR] [--host NAME] [--grace SECONDS]\n"
	  "               [--remove-home] [--report] [--json]",
	  "Plumbing: one hosting step for PROJECT on this machine (the agent started with --hosting\n"
	  "does them itself). prepare: user and group (uid kept in the catalog), ROOT/PROJECT as a\n"
	  "btrfs subvolume with a quota-group limit (a plain directory elsewhere; says so), cgroup\n"
	  "with the limits. apply: limits and quota again, live. stop: SIGTERM to every process of\n"
	  "the project, --grace seconds (default 5), then SIGKILL. teardown: stop, then remove the\n"
	  "cgroup, network link, user and group (--remove-home: the working copy too). usage: the\n"
	  "counters (--report: also into the catalog, as the agent does).\n"
	  "Exit: 0; 7 unknown project or not prepared here; 1 failed (a user name or uid that\n"
	  "      belongs to someone else is refused); 2 usage.\n" },
	{ NULL, NULL, NULL, NULL },
};

static void main_help(FILE *f)
{
	fprintf(f, "usage: projstore [--store STORE] [--catalog CATALOG] COMMAND [ARGS]\n\n"
		   "Versioned, deduplicated, compressed storage of project directories.\n\n"
		   "Commands:\n");
	for (const struct command *c = ps_commands; c->name; c++)
		if (strcmp(c->name, "serve-stdio"))   /* plumbing: not listed */
			fprintf(f, "  %s\n", c->usage);
	fprintf(f, "\nSTORE: --store, else $PROJSTORE_STORE, else ./projstore-data.\n"
		   "CATALOG: --catalog (PATH, sqlite:PATH or postgresql://...), else $PROJSTORE_CATALOG,\n"
		   "else catalog.db inside a local STORE.\n"
		   "'projstore COMMAND --help' describes a command; docs/CLI.md has exit codes and JSON.\n");
}

/* The core's entry point: the launcher (src/launcher/launcher.c) loads
 * projstore-core.so and calls this with its argv. */
int ps_cli_main(int argc, char **argv)
{
	struct cli cli = { 0 };
	const struct command *cmd;
	int i = 1;
	cli.prog = "projstore";
	cli.store = getenv("PROJSTORE_STORE");
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--store") && i + 1 < argc) {
			cli.store = argv[i + 1];
			i += 2;
		} else if (!strncmp(argv[i], "--store=", 8)) {
			cli.store = argv[i] + 8;
			i++;
		} else if (!strcmp(argv[i], "--catalog") && i + 1 < argc) {
			cli.catalog = argv[i + 1];
			i += 2;
		} else if (!strncmp(argv[i], "--catalog=", 10)) {
			cli.catalog = argv[i] + 10;
			i++;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			main_help(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("projstore %s\n", PS_VERSION);
			return 0;
		} else {
			cli_error("unknown option '%s'", argv[i]);
			main_help(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		main_help(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[i], "help")) {
		if (i + 1 < argc && (cmd = cli_find(argv[i + 1]))) {
			cli_help(cmd, stdout);
			return 0;
		}
		main_help(stdout);
		return 0;
	}
	cmd = cli_find(argv[i]);
	if (!cmd) {
		cli_error("unknown command '%s'", argv[i]);
		main_help(stderr);
		return EXIT_USAGE;
	}
	if (!cli.store || !*cli.store)
		cli.store = "projstore-data";
	for (int k = i + 1; k < argc; k++) {
		if (!strcmp(argv[k], "--"))
			break;
		if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
			cli_help(cmd, stdout);
			return 0;
		}
	}
	return cmd->run(&cli, argc - i, argv + i);
}
