//! What changed between two configs, so that a reload applies only that
//! (umdns's `vlist_update` pattern: compare, then act on added, removed
//! and changed entries only).
//!
//! [`Config::diff`] is pure. It compares every option with the [`super::schema`]
//! tables' `same`, so an option added there is compared
//! here without more code, and each change carries the table's
//! [`Reload`] effect. Peers are matched by name, services by name
//! ignoring case (as DNS and the config compare them). The store section
//! is compared option by option, a missing one as what it means
//! ([`Config::store_or_client`]: `enabled '0'`, defaults); while the store
//! is off before and after, nothing needs a restart.
//!
//! Invariant: `Config::diff(a, b)` is empty exactly when `a` and `b` hold
//! the same values, peers, services and store values (in any order of
//! sections; no `config store` holds `enabled '0'` and the defaults).

use super::schema::{
    OptionSpec, Reload, AGENT_OPTIONS, PEER_OPTIONS, SERVICE_OPTIONS, STORE_OPTIONS,
};
use super::Config;

/// One difference between an old and a new config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// An agent option's value changed (also from or to its default).
    Agent {
        option: &'static str,
        reload: Reload,
    },
    PeerAdded(String),
    PeerRemoved(String),
    /// The same peer with other values: which options (table order) and
    /// the most disruptive of their reload effects.
    PeerChanged {
        name: String,
        options: Vec<&'static str>,
        reload: Reload,
    },
    ServiceAdded(String),
    ServiceRemoved(String),
    /// The same service with other values, as for a peer (a service
    /// renamed only in case lists `name`).
    ServiceChanged {
        name: String,
        options: Vec<&'static str>,
        reload: Reload,
    },
    /// A store option's value changed (also by adding or removing the
    /// section); `reload` is [`Reload::Nothing`] when the store is off in
    /// both configs.
    Store {
        option: &'static str,
        reload: Reload,
    },
}

impl Change {
    /// What applying the change needs. Adding or removing a peer or a
    /// service leaves the others alone, so it is live.
    pub fn reload(&self) -> Reload {
        match self {
            Change::Agent { reload, .. }
            | Change::Store { reload, .. }
            | Change::PeerChanged { reload, .. }
            | Change::ServiceChanged { reload, .. } => *reload,
            Change::PeerAdded(_)
            | Change::PeerRemoved(_)
            | Change::ServiceAdded(_)
            | Change::ServiceRemoved(_) => Reload::Live,
        }
    }
}

/// The options whose values differ, with the strongest reload effect.
fn changed<T>(specs: &[OptionSpec<T>], old: &T, new: &T) -> (Vec<&'static str>, Reload) {
    let mut options = Vec::new();
    let mut reload = Reload::Nothing;
    for spec in specs {
        if !(spec.same)(old, new) {
            options.push(spec.name);
            reload = reload.max(spec.reload);
        }
    }
    (options, reload)
}

impl Config {
    /// The changes from `old` to `new`: agent options (table order), then
    /// peers (removed ones in old order, then added or changed ones in new
    /// order), then services alike, then store options (table order).
    pub fn diff(old: &Config, new: &Config) -> Vec<Change> {
        let mut out = Vec::new();
        for spec in AGENT_OPTIONS {
            if !(spec.same)(&old.agent, &new.agent) {
                out.push(Change::Agent {
                    option: spec.name,
                    reload: spec.reload,
                });
            }
        }

        for p in &old.peers {
            if !new.peers.iter().any(|q| q.name == p.name) {
                out.push(Change::PeerRemoved(p.name.clone()));
            }
        }
        for p in &new.peers {
            match old.peers.iter().find(|q| q.name == p.name) {
                None => out.push(Change::PeerAdded(p.name.clone())),
                Some(q) => {
                    let (options, reload) = changed(PEER_OPTIONS, q, p);
                    if !options.is_empty() {
                        out.push(Change::PeerChanged {
                            name: p.name.clone(),
                            options,
                            reload,
                        });
                    }
                }
            }
        }

        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        for s in &old.services {
            if !new.services.iter().any(|t| same(&t.name, &s.name)) {
                out.push(Change::ServiceRemoved(s.name.clone()));
            }
        }
        for s in &new.services {
            match old.services.iter().find(|t| same(&t.name, &s.name)) {
                None => out.push(Change::ServiceAdded(s.name.clone())),
                Some(t) => {
                    let (options, reload) = changed(SERVICE_OPTIONS, t, s);
                    if !options.is_empty() {
                        out.push(Change::ServiceChanged {
                            name: s.name.clone(),
                            options,
                            reload,
                        });
                    }
                }
            }
        }

        let (a, b) = (old.store_or_client(), new.store_or_client());
        let running = a.enabled || b.enabled;
        for spec in STORE_OPTIONS {
            if !(spec.same)(a, b) {
                out.push(Change::Store {
                    option: spec.name,
                    reload: if running {
                        spec.reload
                    } else {
                        Reload::Nothing
                    },
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::Part;
    use crate::config::uci::parse_with_default_name;
    use crate::keys::encode_public;

    fn cfg(text: &str) -> Config {
        match parse_with_default_name("t", text, "host") {
            Ok(c) => c,
            Err(e) => panic!("{e}\n{text}"),
        }
    }

    fn key(i: u8) -> String {
        encode_public(&[i; 32])
    }

    #[test]
    fn nothing_changed() {
        let text = format!(
            "config agent\n\toption name a\nconfig peer p\n\toption public_key {}\n\
             config service s\n\toption type http\n\toption port 80\n",
            key(1)
        );
        let c = cfg(&text);
        assert_eq!(Config::diff(&c, &c), vec![]);
        // Written differently, read the same: no change either.
        let other = format!(
            "package cloudy\nc agent 'x' ; o name 'a'\nc peer\n\to name p\n\to public_key '{}'\n\
             config service\n\toption name s\n\toption type _HTTP._tcp\n\toption port 80\n",
            key(1)
        );
        assert_eq!(Config::diff(&c, &cfg(&other)), vec![]);
        assert_eq!(Config::diff(&cfg(""), &cfg("config agent\n")), vec![]);
    }

    #[test]
    fn agent_options_with_their_reload_effect() {
        let old = cfg("config agent\n\toption name a\n\tlist address 10.0.0.1/24\n");
        let new = cfg(
            "config agent\n\toption name b\n\toption log_level debug\n\toption listen_port 7000\n\
             \tlist address 10.0.0.1/24\n\tlist address 10.0.0.2/24\n\toption mode raw\n\
             \toption raw_device eth1\n\toption mdns 0\n",
        );
        let want = vec![
            Change::Agent {
                option: "name",
                reload: Reload::Restart(Part::Engine),
            },
            Change::Agent {
                option: "listen_port",
                reload: Reload::Restart(Part::Sockets),
            },
            Change::Agent {
                option: "address",
                reload: Reload::Live,
            },
            Change::Agent {
                option: "mode",
                reload: Reload::Restart(Part::Device),
            },
            Change::Agent {
                option: "raw_device",
                reload: Reload::Restart(Part::Device),
            },
            Change::Agent {
                option: "log_level",
                reload: Reload::Live,
            },
            Change::Agent {
                option: "mdns",
                reload: Reload::Restart(Part::Discovery),
            },
        ];
        assert_eq!(Config::diff(&old, &new), want);
        // And back: the same options.
        let back: Vec<_> = Config::diff(&new, &old)
            .iter()
            .map(Change::reload)
            .collect();
        let there: Vec<_> = want.iter().map(Change::reload).collect();
        assert_eq!(back, there);
    }

    #[test]
    fn peers_added_removed_changed() {
        let old = cfg(&format!(
            "config peer a\n\toption public_key {}\nconfig peer b\n\toption public_key {}\n\
             config peer c\n\toption public_key {}\n\tlist endpoint 1.2.3.4:5\n",
            key(1),
            key(2),
            key(3)
        ));
        let new = cfg(&format!(
            "config peer d\n\toption public_key {}\nconfig peer c\n\toption public_key {}\n\
             \tlist endpoint 1.2.3.4:6\nconfig peer b\n\toption public_key {}\n",
            key(4),
            key(3),
            key(5)
        ));
        assert_eq!(
            Config::diff(&old, &new),
            vec![
                Change::PeerRemoved("a".into()),
                Change::PeerAdded("d".into()),
                Change::PeerChanged {
                    name: "c".into(),
                    options: vec!["endpoint"],
                    reload: Reload::Live,
                },
                Change::PeerChanged {
                    name: "b".into(),
                    options: vec!["public_key"],
                    reload: Reload::Restart(Part::Peer),
                },
            ]
        );
        // Only the peers moved in the file: nothing to do.
        let moved = cfg(&format!(
            "config peer c\n\toption public_key {}\n\tlist endpoint 1.2.3.4:5\n\
             config peer a\n\toption public_key {}\nconfig peer b\n\toption public_key {}\n",
            key(3),
            key(1),
            key(2)
        ));
        assert_eq!(Config::diff(&old, &moved), vec![]);
    }

    #[test]
    fn services_added_removed_changed() {
        let old = cfg("config service web\n\toption type http\n\toption port 80\n\
             config service ssh\n\toption type ssh\n\toption port 22\n");
        let new = cfg(
            "config service Web\n\toption type http\n\toption port 8080\n\tlist txt path=/\n\
             config service ftp\n\toption type ftp\n\toption port 21\n",
        );
        assert_eq!(
            Config::diff(&old, &new),
            vec![
                Change::ServiceRemoved("ssh".into()),
                Change::ServiceChanged {
                    name: "Web".into(),
                    options: vec!["name", "port", "txt"],
                    reload: Reload::Live,
                },
                Change::ServiceAdded("ftp".into()),
            ]
        );
        assert!(Config::diff(&old, &new)
            .iter()
            .all(|c| c.reload() == Reload::Live));
    }

    fn store(option: &'static str, reload: Reload) -> Change {
        Change::Store { option, reload }
    }

    const RESTART: Reload = Reload::Restart(Part::Store);

    #[test]
    fn store_options_with_their_reload_effect() {
        let disk = "config store\n\toption path /mnt/sda1/cloudy\n";
        // A box becomes a storage box, and stops being one.
        let want = vec![store("enabled", RESTART), store("path", RESTART)];
        assert_eq!(Config::diff(&cfg(""), &cfg(disk)), want);
        assert_eq!(Config::diff(&cfg(disk), &cfg("")), want);
        let off = "config store\n\toption path /mnt/sda1/cloudy\n\toption enabled 0\n";
        assert_eq!(
            Config::diff(&cfg(disk), &cfg(off)),
            vec![store("enabled", RESTART)]
        );
        // Live quota, K/N/H read by each put, a restart for the rest.
        let new = cfg(
            "config store\n\toption path /mnt/sdb1/cloudy\n\toption quota 2G\n\
                       \toption shares_needed 2\n\toption shares_total 5\n\
                       \toption shares_happy 4\n\toption port 7000\n",
        );
        assert_eq!(
            Config::diff(&cfg(disk), &new),
            vec![
                store("path", RESTART),
                store("quota", Reload::Live),
                store("shares_needed", Reload::Nothing),
                store("shares_total", Reload::Nothing),
                store("shares_happy", Reload::Nothing),
                store("port", RESTART),
            ]
        );
        let quota = cfg("config store\n\toption path /mnt/sda1/cloudy\n\toption quota 1024M\n");
        assert_eq!(Config::diff(&cfg(disk), &quota), vec![]);
        let quota = cfg("config store\n\toption path /mnt/sda1/cloudy\n\toption quota 3G\n");
        assert_eq!(
            Config::diff(&cfg(disk), &quota),
            vec![store("quota", Reload::Live)]
        );
        // Off before and after: nothing to restart, only values changed.
        let client = cfg(
            "config store\n\toption enabled 0\n\toption shares_needed 2\n\
                          \toption port 7000\n\toption path /x\n",
        );
        assert_eq!(
            Config::diff(&cfg(""), &client),
            vec![
                store("path", Reload::Nothing),
                store("shares_needed", Reload::Nothing),
                store("port", Reload::Nothing),
            ]
        );
        // Named, anonymous, written otherwise: the same store.
        let named =
            cfg("config store 'disk'\n\toption path '/mnt/sda1/cloudy/'\n\toption enabled yes\n");
        assert_eq!(Config::diff(&cfg(disk), &named), vec![]);
        // After the services, with the others.
        let text = format!(
            "config agent\n\toption log_level debug\nconfig peer p\n\toption public_key {}\n{disk}",
            key(1)
        );
        assert_eq!(
            Config::diff(&cfg(""), &cfg(&text)),
            vec![
                Change::Agent {
                    option: "log_level",
                    reload: Reload::Live
                },
                Change::PeerAdded("p".into()),
                store("enabled", RESTART),
                store("path", RESTART),
            ]
        );
    }

    #[test]
    fn empty_exactly_when_equal() {
        let texts = [
            "",
            "config agent\n\toption mtu 1400\n",
            "config agent\n\tlist mdns_interface br-lan\n",
            "config agent\n\tlist mdns_interface br-lan\n\tlist mdns_interface wlan0\n",
            "config agent\n\tlist mdns_interface wlan0\n\tlist mdns_interface br-lan\n",
            "config service s\n\toption type http\n\toption port 1\n\toption host h\n",
            "config service s\n\toption type http\n\toption port 1\n",
            "config service s\n\toption type _http._udp\n\toption port 1\n",
            "config store\n\toption path /a\n",
            "config store 's'\n\toption path /a\n\toption quota 1G\n",
            "config store\n\toption path /b\n",
            "config store\n\toption path /a\n\toption enabled 0\n",
            "config store\n\toption enabled 0\n",
            "config store\n\toption enabled 0\n\toption shares_happy 3\n",
            "config store\n\toption path /a\n\toption quota 2G\n",
            "config store\n\toption path /a\n\toption port 1\n",
        ];
        // No `config store` reads as `enabled '0'` and the defaults.
        let same = |x: &Config, y: &Config| {
            (&x.agent, &x.peers, &x.services, x.store_or_client())
                == (&y.agent, &y.peers, &y.services, y.store_or_client())
        };
        for a in texts {
            for b in texts {
                let (x, y) = (cfg(a), cfg(b));
                assert_eq!(
                    Config::diff(&x, &y).is_empty(),
                    same(&x, &y),
                    "{a:?} → {b:?}"
                );
                if x.store.is_some() == y.store.is_some() {
                    assert_eq!(same(&x, &y), x == y, "{a:?} → {b:?}");
                }
            }
        }
    }
}
