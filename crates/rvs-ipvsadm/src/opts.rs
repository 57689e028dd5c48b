//! ipvsadm's commands and options, and its rules for which may go together
//! (`commands_v_options` and `tunnel_types_v_options` in ipvsadm.c).

/// A command (`cmdnames[]`; the names appear in error texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// `-A`
    Add,
    /// `-E`
    Edit,
    /// `-D`
    Del,
    /// `-C`
    Flush,
    /// `-L`, `-l`
    List,
    /// `-a`
    AddDest,
    /// `-d`
    DelDest,
    /// `-e`
    EditDest,
    /// `--set`
    Timeout,
    /// `--start-daemon`
    StartDaemon,
    /// `--stop-daemon`
    StopDaemon,
    /// `-R`
    Restore,
    /// `-S`
    Save,
    /// `-Z`
    Zero,
}

impl Cmd {
    /// The name ipvsadm prints.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Add => "add-service",
            Self::Edit => "edit-service",
            Self::Del => "delete-service",
            Self::Flush => "flush",
            Self::List => "list",
            Self::AddDest => "add-server",
            Self::DelDest => "delete-server",
            Self::EditDest => "edit-server",
            Self::Timeout => "set",
            Self::StartDaemon => "start-daemon",
            Self::StopDaemon => "stop-daemon",
            Self::Restore => "restore",
            Self::Save => "save",
            Self::Zero => "zero",
        }
    }

    /// Its row of the legality table: one character per option, in [`OPT_NAMES`] order.
    /// `+` compulsory, `x` illegal, `1` mutually exclusive, ` ` optional.
    const fn rules(self) -> &'static [u8; NUMBER_OF_OPT] {
        match self {
            Self::Add | Self::Edit => b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
            Self::Del => b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Self::List => b" 11xxxxxxxxx11       xxxxxxx xxxxx",
            Self::AddDest | Self::EditDest => b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
            Self::DelDest => b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Self::StartDaemon => b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx",
            Self::StopDaemon => b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx",
            Self::Save => b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Self::Zero => b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Self::Flush | Self::Timeout | Self::Restore => b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        }
    }
}

/// Number of option bits.
pub const NUMBER_OF_OPT: usize = 34;

/// Option names in bit order (`optnames[]`).
pub const OPT_NAMES: [&str; NUMBER_OF_OPT] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// Option bit positions (`OPTC_*`).
#[allow(
    missing_docs,
    reason = "each constant is the option of the same name in OPT_NAMES"
)]
pub mod optc {
    pub const NUMERIC: usize = 0;
    pub const CONNECTION: usize = 1;
    pub const SERVICE: usize = 2;
    pub const SCHEDULER: usize = 3;
    pub const PERSISTENT: usize = 4;
    pub const NETMASK: usize = 5;
    pub const SERVER: usize = 6;
    pub const FORWARD: usize = 7;
    pub const WEIGHT: usize = 8;
    pub const UTHRESHOLD: usize = 9;
    pub const LTHRESHOLD: usize = 10;
    pub const MCAST: usize = 11;
    pub const TIMEOUT: usize = 12;
    pub const DAEMON: usize = 13;
    pub const STATS: usize = 14;
    pub const RATE: usize = 15;
    pub const THRESHOLDS: usize = 16;
    pub const PERSISTENTCONN: usize = 17;
    pub const NOSORT: usize = 18;
    pub const SYNCID: usize = 19;
    pub const EXACT: usize = 20;
    pub const ONEPACKET: usize = 21;
    pub const PE: usize = 22;
    pub const SCHED_FLAGS: usize = 23;
    pub const MCAST_GROUP: usize = 24;
    pub const MCAST_PORT: usize = 25;
    pub const MCAST_TTL: usize = 26;
    pub const SYNC_MAXLEN: usize = 27;
    pub const TUN_INFO: usize = 28;
    pub const TUN_TYPE: usize = 29;
    pub const TUN_PORT: usize = 30;
    pub const TUN_NOCSUM: usize = 31;
    pub const TUN_CSUM: usize = 32;
    pub const TUN_REMCSUM: usize = 33;
}

/// A set of option bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options(pub u64);

impl Options {
    /// Whether an option was given.
    #[must_use]
    pub const fn has(self, optc: usize) -> bool {
        self.0 & (1 << optc) != 0
    }

    /// Whether any of these options was given.
    #[must_use]
    pub fn any(self, optcs: &[usize]) -> bool {
        optcs.iter().any(|&o| self.has(o))
    }

    /// Records an option; `Err` with ipvsadm's text if it was already given.
    ///
    /// # Errors
    /// `multiple '<name>' options specified`.
    pub fn set(&mut self, optc: usize) -> Result<(), String> {
        if self.has(optc) {
            return Err(format!("multiple '{}' options specified", OPT_NAMES[optc]));
        }
        self.0 |= 1 << optc;
        Ok(())
    }
}

/// `generic_opt_check`: the options a command requires, forbids, or takes one of.
///
/// # Errors
/// ipvsadm's text for the first broken rule.
pub fn generic_opt_check(cmd: Cmd, options: Options) -> Result<(), String> {
    let rules = cmd.rules();
    let mut last = None;
    for (j, &rule) in rules.iter().enumerate() {
        if !options.has(j) {
            if rule == b'+' {
                return Err(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    OPT_NAMES[j],
                    cmd.name()
                ));
            }
        } else {
            if rule == b'x' {
                return Err(format!(
                    "Illegal '{}' option with the '{}' command",
                    OPT_NAMES[j],
                    cmd.name()
                ));
            }
            if rule == b'1' {
                if let Some(l) = last {
                    return Err(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        OPT_NAMES[j],
                        OPT_NAMES[l],
                        cmd.name()
                    ));
                }
                last = Some(j);
            }
        }
    }
    Ok(())
}

/// Tunnel type names, by ipvsadm's numbering (ipip 0, gue 1, gre 2).
pub const TUN_NAMES: [&str; 3] = ["ipip", "gue", "gre"];

/// `tunnel_opt_check`: which tunnel options each tunnel type needs or forbids.
///
/// # Errors
/// ipvsadm's text for the first broken rule.
pub fn tunnel_opt_check(tun_type: usize, options: Options) -> Result<(), String> {
    const OPTS: [usize; 4] = [
        optc::TUN_PORT,
        optc::TUN_NOCSUM,
        optc::TUN_CSUM,
        optc::TUN_REMCSUM,
    ];
    const RULES: [&[u8; 4]; 3] = [b"xxxx", b"+111", b"x11x"];
    let name = TUN_NAMES[tun_type];
    let mut last = None;
    for (j, &k) in OPTS.iter().enumerate() {
        let rule = RULES[tun_type][j];
        if !options.has(k) {
            if rule == b'+' {
                return Err(format!(
                    "You need to supply the '{}' option for the '{name}' tunnel type",
                    OPT_NAMES[k]
                ));
            }
        } else {
            if rule == b'x' {
                return Err(format!(
                    "Illegal '{}' option with the '{name}' tunnel type",
                    OPT_NAMES[k]
                ));
            }
            if rule == b'1' {
                if let Some(l) = last {
                    return Err(format!(
                        "The option '{}' conflicts with the '{}' option in the '{name}' tunnel type",
                        OPT_NAMES[k], OPT_NAMES[l]
                    ));
                }
                last = Some(k);
            }
        }
    }
    Ok(())
}
