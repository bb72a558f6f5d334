#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for testing the workflow's Slurm profile end to end.
#
#   scripts/slurm/local_cluster.sh install        # apt-get the Debian packages (root; idempotent)
#   scripts/slurm/local_cluster.sh up   [STATE]   # start munged, mariadbd, slurmdbd, slurmctld, slurmd
#   scripts/slurm/local_cluster.sh env  [STATE]   # print `export SLURM_CONF=...` for the client commands
#   scripts/slurm/local_cluster.sh down [STATE]   # stop every daemon `up` started (by its recorded pid)
#
# STATE (default /tmp/saliency-slurm) holds every config, database, spool, log and pid file. Two
# things live at their fixed system paths, because Slurm's clients look only there: munged's socket
# (/run/munge; an already running munged is reused) and /etc/slurm/slurm.conf, a symlink to
# STATE/etc/slurm.conf (the Snakemake job step strips SLURM_CONF before calling srun). `up` refuses
# to replace a slurm.conf that is not such a link; `down` removes the link.
# The node advertises four fake GPUs (gres gpu:4 backed by /dev/null, /dev/zero, /dev/full,
# /dev/urandom) so GPU requests (--gpus=1 / --gres=gpu:1) are scheduled as on a real GPU cluster. Accounting runs through slurmdbd + MariaDB so `sacct` works, which the
# Snakemake Slurm executor uses for its status checks. Daemons are started by hand (no systemd):
# each runs in the foreground under setsid, and its pid goes to STATE/pids/<name>.pid.
# Ports (override with SLURM_TEST_PORT_BASE): base+0 slurmctld, +1 slurmd, +2 slurmdbd, +3 mariadb.
set -Eeuo pipefail

PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
CLUSTER=saliency
ACCOUNT=saliency-test
PORT_BASE=${SLURM_TEST_PORT_BASE:-16817}

log() { echo "local_cluster: $*" >&2; }

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "packages present"
        return
    fi
    if [ "$(id -u)" != 0 ]; then
        log "need root to install: ${missing[*]}"
        exit 2
    fi
    log "installing ${missing[*]}"
    apt-get update -qq
    # policy-rc.d 101: do not let the packages' maintainer scripts start their daemons
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
}

# start NAME CMD...: run CMD in the foreground of a new session, logging to STATE/log/NAME.out
start() {
    local name=$1
    shift
    setsid "$@" </dev/null >"$STATE/log/$name.out" 2>&1 &
    echo $! >"$STATE/pids/$name.pid"
    log "started $name (pid $!)"
}

# wait_for DESCRIPTION SECONDS CMD...: poll CMD until it succeeds
wait_for() {
    local what=$1 secs=$2
    shift 2
    local t=0
    until timeout 10 "$@" >/dev/null 2>&1; do
        sleep 0.5
        t=$((t + 1))
        if [ $t -ge $((secs * 2)) ]; then
            log "timed out waiting for $what; logs:"
            tail -n 20 "$STATE"/log/* >&2 || true
            return 1
        fi
    done
}

alive() { [ -f "$STATE/pids/$1.pid" ] && kill -0 "$(cat "$STATE/pids/$1.pid")" 2>/dev/null; }

write_configs() {
    local host cpus mem user
    host=$(hostname -s)
    user=$(id -un)
    # The node advertises at least 8 CPUs and 64 GB (SlurmdParameters=config_overrides), so the
    # tiny test config's declared requests (e.g. mem_mb=8000 per maps job) fit several at a time on
    # a small CI machine; override with SLURM_TEST_CPUS / SLURM_TEST_MEM_MB.
    cpus=${SLURM_TEST_CPUS:-$(($(nproc) > 8 ? $(nproc) : 8))}
    mem=${SLURM_TEST_MEM_MB:-65536}
    cat >"$STATE/etc/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT_BASE
SlurmdPort=$((PORT_BASE + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$((PORT_BASE + 2))
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
MinJobAge=300
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:4 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    # Fake GPUs: any character devices do; with AutoDetect=off Slurm only counts and binds them.
    cat >"$STATE/etc/gres.conf" <<EOF
AutoDetect=off
Name=gpu File=/dev/null,/dev/zero,/dev/full,/dev/urandom
EOF
    cat >"$STATE/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$((PORT_BASE + 2))
SlurmUser=$user
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$((PORT_BASE + 3))
StorageUser=slurm
StoragePass=slurm-test
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$STATE/etc/slurmdbd.conf"
}

up() {
    install_packages
    if alive slurmctld || alive slurmd; then
        log "already up in $STATE"
        return
    fi
    mkdir -p "$STATE"
    chmod 700 "$STATE"
    mkdir -p "$STATE"/{etc,munge,db,run,log,pids,spool/ctld,spool/d}
    chmod 700 "$STATE/munge"
    write_configs
    export SLURM_CONF=$STATE/etc/slurm.conf
    # replace only our own link (this or an earlier, removed state dir), never a real config
    if [ -e /etc/slurm/slurm.conf ] && ! [ -L /etc/slurm/slurm.conf ]; then
        log "/etc/slurm/slurm.conf exists and is not a local_cluster link; not replacing it"
        exit 1
    fi
    mkdir -p /etc/slurm
    ln -sfn "$SLURM_CONF" /etc/slurm/slurm.conf

    # munge on its default socket (Slurm's client commands only use that one for slurmdbd); an
    # already running munged (a machine's own) is reused, else ours gets a fresh key from STATE.
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        log "reusing the running munged"
    else
        [ -f "$STATE/munge/munge.key" ] || dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
        chmod 400 "$STATE/munge/munge.key"
        mkdir -p /run/munge
        # --force: the key and logs sit under /tmp (sticky, world-writable), which munged distrusts
        start munged munged --foreground --force --key-file="$STATE/munge/munge.key" \
            --log-file="$STATE/log/munged.log" --pid-file="$STATE/run/munged.pid" \
            --seed-file="$STATE/munge/munged.seed"
        wait_for munged 20 sh -c "munge -n | unmunge"
    fi

    # MariaDB for slurmdbd, on its own datadir, socket and port
    local sock=$STATE/run/mysqld.sock
    if [ ! -d "$STATE/db/mysql" ]; then
        mariadb-install-db --no-defaults --datadir="$STATE/db" --user="$(id -un)" \
            --auth-root-authentication-method=socket --skip-test-db >"$STATE/log/mariadb-install.out" 2>&1
    fi
    start mariadbd mariadbd --no-defaults --datadir="$STATE/db" --socket="$sock" \
        --port=$((PORT_BASE + 3)) --bind-address=127.0.0.1 --user="$(id -un)" \
        --pid-file="$STATE/run/mariadbd.pid" --log-error="$STATE/log/mariadbd.log" \
        --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 --skip-log-bin
    wait_for mariadbd 60 mariadb --no-defaults -S "$sock" -u root -e "SELECT 1"
    mariadb --no-defaults -S "$sock" -u root -e "
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm-test';
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm-test';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
        FLUSH PRIVILEGES;"

    start slurmdbd slurmdbd -D
    wait_for slurmdbd 60 sacctmgr -n list cluster
    timeout 30 sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
    timeout 30 sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=test Organization=test >/dev/null 2>&1 || true
    timeout 30 sacctmgr -i add user "$(id -un)" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null 2>&1 || true

    start slurmctld slurmctld -D -f "$SLURM_CONF"
    wait_for slurmctld 60 scontrol ping
    start slurmd slurmd -D -f "$SLURM_CONF"
    wait_for "node idle" 60 sh -c "sinfo -h -N -o %T | grep -qx idle"
    log "up: $(sinfo -h -N -o '%N %T %c cpus %m MB gres=%G')"
    log "export SLURM_CONF=$SLURM_CONF"
}

down() {
    local name pid
    # reverse start order; each daemon by its own recorded pid
    for name in slurmd slurmctld slurmdbd mariadbd munged; do
        [ -f "$STATE/pids/$name.pid" ] || continue
        pid=$(cat "$STATE/pids/$name.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 40); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.25
            done
            if kill -0 "$pid" 2>/dev/null; then
                log "$name (pid $pid) ignored TERM; killing"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            log "stopped $name (pid $pid)"
        fi
        rm -f "$STATE/pids/$name.pid"
    done
    if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$STATE/etc/slurm.conf" ]; then
        rm -f /etc/slurm/slurm.conf
    fi
}

cmd=${1:-}
STATE=$(realpath -m "${2:-${SLURM_TEST_STATE:-/tmp/saliency-slurm}}")
case "$cmd" in
install) install_packages ;;
up) trap 'log "bring-up failed; stopping what was started"; down' ERR
    up ;;
down) down ;;
env) echo "export SLURM_CONF=$STATE/etc/slurm.conf" ;;
*)
    sed -n '2,7p' "$0" >&2
    exit 2
    ;;
esac
