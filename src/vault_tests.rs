use super::*;
use std::os::unix::fs::PermissionsExt;

/// A fixed key, `id:base64`, for tests that need to know its text.
fn key_text(id: &str, byte: u8) -> String {
    format!("{id}:{}", URL_SAFE_NO_PAD.encode([byte; KEY_LEN]))
}

fn key(id: &str, byte: u8) -> MasterKey {
    MasterKey::parse(&key_text(id, byte)).expect("a valid key")
}

fn vault(current: MasterKey) -> Vault {
    Vault::new(current, Vec::new()).expect("one key")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("exists").permissions().mode() & 0o777
}

const CONTEXT: &str = "carrier_account:0190c2a4-7d1e-7000-8000-000000000001";

#[test]
fn sealed_values_open_for_their_context() {
    let vault = vault(key("k1", 7));
    let sealed = vault.seal(CONTEXT, b"api-key-4711");
    assert!(sealed.starts_with("wmk1.k1."), "{sealed}");
    assert!(is_sealed(&sealed));
    assert_eq!(sealed_key_id(&sealed), Some("k1"));
    let opened = vault.open(CONTEXT, &sealed).expect("opens");
    assert_eq!(opened.expose_secret().as_slice(), b"api-key-4711");
    let text = vault.open_string(CONTEXT, &sealed).expect("opens");
    assert_eq!(text.expose(), "api-key-4711");
    // Empty secrets round-trip too.
    let empty = vault.seal(CONTEXT, b"");
    assert!(is_sealed(&empty));
    assert_eq!(
        vault.open_string(CONTEXT, &empty).expect("opens").expose(),
        ""
    );
}

#[test]
fn a_sealed_value_does_not_open_for_another_record() {
    let vault = vault(key("k1", 7));
    let sealed = vault.seal(CONTEXT, b"api-key-4711");
    let err = vault
        .open(
            "carrier_account:0190c2a4-7d1e-7000-8000-000000000002",
            &sealed,
        )
        .unwrap_err();
    assert!(
        matches!(err, VaultError::Authentication { ref key_id } if key_id == "k1"),
        "{err:?}"
    );
    assert!(vault.open("", &sealed).is_err());
}

#[test]
fn an_altered_sealed_value_does_not_open() {
    let vault = Vault::new(key("k1", 7), vec![key("k0", 9)]).expect("two keys");
    let sealed = vault.seal(CONTEXT, b"api-key-4711");
    let body = sealed.strip_prefix("wmk1.k1.").expect("header");
    let decoded = URL_SAFE_NO_PAD.decode(body).expect("base64url");
    for i in [0, NONCE_LEN, decoded.len() - 1] {
        let mut tampered = decoded.clone();
        tampered[i] ^= 0x01;
        let tampered = format!("wmk1.k1.{}", URL_SAFE_NO_PAD.encode(&tampered));
        let err = vault.open(CONTEXT, &tampered).unwrap_err();
        assert!(
            matches!(err, VaultError::Authentication { .. }),
            "byte {i}: {err:?}"
        );
    }
    // The header is authenticated as well: naming another key of the ring does not open it.
    let relabelled = format!("wmk1.k0.{body}");
    assert!(matches!(
        vault.open(CONTEXT, &relabelled),
        Err(VaultError::Authentication { .. })
    ));
    // Cut short, it is no longer even well-formed.
    let truncated = format!("wmk1.k1.{}", URL_SAFE_NO_PAD.encode(&decoded[..30]));
    assert!(!is_sealed(&truncated));
    assert!(matches!(
        vault.open(CONTEXT, &truncated),
        Err(VaultError::Malformed { .. })
    ));
}

#[test]
fn malformed_and_unsealed_values_are_told_apart() {
    let vault = vault(key("k1", 7));
    for text in ["api-key-4711", "", "wmk2.k1.AAAA"] {
        assert!(!is_sealed(text));
        assert_eq!(sealed_key_id(text), None);
        let err = vault.open(CONTEXT, text).unwrap_err();
        assert!(matches!(err, VaultError::NotSealed), "{text}: {err:?}");
        assert!(!err.to_string().contains("api-key-4711"));
        assert!(vault.needs_reseal(text), "{text}");
    }
    for text in [
        "wmk1.",
        "wmk1.k1",
        "wmk1.k!.AAAA",
        "wmk1.k1.not*base64",
        "wmk1.k1.AAAA",
    ] {
        assert!(!is_sealed(text), "{text}");
        let err = vault.open(CONTEXT, text).unwrap_err();
        assert!(
            matches!(err, VaultError::Malformed { .. }),
            "{text}: {err:?}"
        );
    }
}

#[test]
fn an_unknown_key_is_named() {
    let sealed = vault(key("k-old", 1)).seal(CONTEXT, b"secret");
    let err = vault(key("k-new", 2)).open(CONTEXT, &sealed).unwrap_err();
    assert!(
        matches!(err, VaultError::UnknownKey { ref key_id } if key_id == "k-old"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("`k-old`"), "{message}");
    assert!(message.contains("WAYMARK_MASTER_KEY"), "{message}");
}

#[test]
fn older_keys_still_open_and_ask_for_a_reseal() {
    let old = vault(key("k0", 1));
    let sealed_old = old.seal(CONTEXT, b"secret");
    let rotated = Vault::new(key("k1", 2), vec![key("k0", 1)]).expect("two keys");
    assert_eq!(rotated.current_key_id(), "k1");
    assert_eq!(rotated.key_ids().collect::<Vec<_>>(), ["k1", "k0"]);
    assert_eq!(
        rotated
            .open_string(CONTEXT, &sealed_old)
            .expect("opens")
            .expose(),
        "secret"
    );
    assert!(rotated.needs_reseal(&sealed_old));
    let resealed = rotated.seal(CONTEXT, b"secret");
    assert_eq!(sealed_key_id(&resealed), Some("k1"));
    assert!(!rotated.needs_reseal(&resealed));
}

#[test]
fn a_generated_vault_seals_and_opens() {
    let vault = Vault::generate();
    let sealed = vault.seal(CONTEXT, b"secret");
    assert_eq!(sealed_key_id(&sealed), Some(vault.current_key_id()));
    assert_eq!(
        vault.open_string(CONTEXT, &sealed).expect("opens").expose(),
        "secret"
    );
    assert!(matches!(
        Vault::generate().open(CONTEXT, &sealed),
        Err(VaultError::UnknownKey { .. })
    ));
}

#[test]
fn two_keys_with_one_id_are_refused() {
    let err = Vault::new(key("k1", 1), vec![key("k0", 2), key("k1", 3)]).unwrap_err();
    assert!(
        matches!(err, VaultError::DuplicateKeyId { ref key_id } if key_id == "k1"),
        "{err:?}"
    );
}

#[test]
fn sealing_twice_gives_different_values_that_do_not_show_the_secret() {
    let vault = vault(key("k1", 7));
    let plaintext = "hunter2-hunter2-hunter2";
    let first = vault.seal(CONTEXT, plaintext.as_bytes());
    let second = vault.seal(CONTEXT, plaintext.as_bytes());
    assert_ne!(first, second);
    for sealed in [&first, &second] {
        assert!(!sealed.contains(plaintext), "{sealed}");
        assert!(!sealed.contains("hunter2"), "{sealed}");
        assert!(
            !sealed.contains(&URL_SAFE_NO_PAD.encode(plaintext)[..8]),
            "{sealed}"
        );
        assert_eq!(
            vault.open_string(CONTEXT, sealed).expect("opens").expose(),
            plaintext
        );
    }
}

#[test]
fn key_text_errors_never_show_the_key() {
    let material = URL_SAFE_NO_PAD.encode([0xAB; KEY_LEN]);
    let short = URL_SAFE_NO_PAD.encode([0xAB; 16]);
    let cases = [
        (material.clone(), KeyParseError::NoSeparator),
        (format!(":{material}"), KeyParseError::BadId),
        (format!("k.1:{material}"), KeyParseError::BadId),
        (
            format!("{}:{material}", "k".repeat(33)),
            KeyParseError::BadId,
        ),
        (format!("k1:{material}="), KeyParseError::BadBase64),
        (
            format!("k1:{}", material.replace('q', "+")),
            KeyParseError::BadBase64,
        ),
        (format!("k1:{}*", &material[..42]), KeyParseError::BadBase64),
        (
            format!("k1:{short}"),
            KeyParseError::WrongLength { bytes: 16 },
        ),
        (
            format!("k1:{material}AAAA"),
            KeyParseError::WrongLength { bytes: 35 },
        ),
    ];
    for (text, expected) in cases {
        let err = MasterKey::parse(&text).unwrap_err();
        assert_eq!(err, expected, "{text}");
        let message = err.to_string();
        assert!(!message.contains(&material[..8]), "{message}");
        assert!(!message.contains(&short[..8]), "{message}");
    }
    // Within a list, the position is named, and still not the key.
    let list = format!("{},k2:{short}", key_text("k1", 1));
    let err = load(
        &VaultConfig::default(),
        Some(&list),
        Path::new("/nonexistent"),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("WAYMARK_MASTER_KEY, key 2: "),
        "{message}"
    );
    assert!(!message.contains(&short[..8]), "{message}");
    assert!(!message.contains(&URL_SAFE_NO_PAD.encode([1; KEY_LEN])[..8]));
}

#[test]
fn debug_output_shows_key_ids_only() {
    let text = key_text("k1", 0xCD);
    let material = text.split_once(':').expect("separator").1.to_owned();
    let key = MasterKey::parse(&text).expect("valid");
    let vault = Vault::new(key.clone(), vec![self::key("k0", 0xEF)]).expect("two keys");
    let shown = format!("{key:?} {key:#?} {vault:?} {vault:#?} {:?}", key.clone());
    assert!(shown.contains("k1") && shown.contains("k0"), "{shown}");
    assert!(!shown.contains(&material[..8]), "{shown}");
    assert!(!shown.contains("205"), "{shown}"); // 0xCD as a decimal byte
    assert!(!shown.contains(&URL_SAFE_NO_PAD.encode([0xEF; KEY_LEN])[..8]));
    assert_eq!(format!("{:?}", key.to_text()), "[redacted]");
    assert_eq!(key.to_text().expose(), text);
}

#[test]
fn generated_keys_have_dated_ids_and_parse_back() {
    let text = generate_key_text();
    let key = MasterKey::parse(&text).expect("a generated key parses");
    let today = jiff::Timestamp::now().strftime("%Y%m%d").to_string();
    assert!(key.id().starts_with(&format!("k{today}")), "{}", key.id());
    assert_eq!(key.id().len(), 15);
    assert_ne!(
        MasterKey::generate().to_text(),
        MasterKey::generate().to_text()
    );
    assert!(MasterKey::new("k 1", [0; KEY_LEN]).is_err());
    let made = MasterKey::new("k1", [3; KEY_LEN]).expect("valid id");
    assert_eq!(made.to_text().expose(), key_text("k1", 3));
}

#[test]
fn the_environment_gives_a_list_of_keys_and_wins_over_the_configuration() {
    let old = vault(key("k0", 1)).seal(CONTEXT, b"old");
    let list = format!(" {} , {} ,", key_text("k1", 2), key_text("k0", 1));
    let config = VaultConfig {
        key_file: None,
        master_key: Some(Secret::from(key_text("kc", 3))),
    };
    let (vault, source) = load(&config, Some(&list), Path::new("/nonexistent")).expect("loads");
    assert_eq!(source, KeySource::Environment);
    assert_eq!(vault.key_ids().collect::<Vec<_>>(), ["k1", "k0"]);
    assert_eq!(
        vault.open_string(CONTEXT, &old).expect("opens").expose(),
        "old"
    );
    assert!(vault.needs_reseal(&old));

    // Without the variable (or with it empty), the configuration's keys are used.
    for env in [None, Some(""), Some("  ")] {
        let (vault, source) = load(&config, env, Path::new("/nonexistent")).expect("loads");
        assert_eq!(source, KeySource::Config);
        assert_eq!(vault.current_key_id(), "kc");
    }
    let err = load(
        &VaultConfig::default(),
        Some(","),
        Path::new("/nonexistent"),
    )
    .unwrap_err();
    assert!(matches!(err, VaultError::NoKeys { .. }), "{err:?}");
}

#[test]
fn the_first_start_generates_a_private_key_file_that_later_starts_reuse() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data").join("master.key");
    let (vault, source) = load(&VaultConfig::default(), None, &path).expect("generates");
    assert_eq!(
        source,
        KeySource::File {
            path: path.clone(),
            created: true
        }
    );
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().expect("folder")), 0o700);
    let text = fs::read_to_string(&path).expect("readable");
    assert!(text.starts_with("# Waymark master keys"), "{text}");
    let sealed = vault.seal(CONTEXT, b"secret");

    let (again, source) = load(&VaultConfig::default(), None, &path).expect("reads");
    assert_eq!(
        source,
        KeySource::File {
            path: path.clone(),
            created: false
        }
    );
    assert_eq!(again.current_key_id(), vault.current_key_id());
    assert_eq!(
        again.open_string(CONTEXT, &sealed).expect("opens").expose(),
        "secret"
    );
    assert_eq!(fs::read_to_string(&path).expect("readable"), text);
    assert_eq!(source.to_string(), path.display().to_string());
}

#[test]
fn the_configured_key_file_is_read_with_comments_and_blank_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("keys");
    let contents = format!(
        "# keys\n\n  {}  \n# retired soon\n{}\n",
        key_text("k2", 2),
        key_text("k1", 1)
    );
    fs::write(&path, contents).expect("written");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).expect("chmod");
    let config = VaultConfig {
        key_file: Some(path.clone()),
        master_key: None,
    };
    let (vault, source) = load(&config, None, &dir.path().join("unused")).expect("reads");
    assert_eq!(vault.key_ids().collect::<Vec<_>>(), ["k2", "k1"]);
    assert_eq!(
        source,
        KeySource::File {
            path: path.clone(),
            created: false
        }
    );
    assert!(!dir.path().join("unused").exists());

    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    fs::write(
        &path,
        format!("# keys\n{}\nk1:tooshort\n", key_text("k2", 2)),
    )
    .expect("written");
    let message = load(&config, None, Path::new("/unused"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&format!("{}, line 3: ", path.display())),
        "{message}"
    );
    assert!(!message.contains("tooshort"), "{message}");

    fs::write(&path, "# nothing yet\n").expect("written");
    let err = load(&config, None, Path::new("/unused")).unwrap_err();
    assert!(matches!(err, VaultError::NoKeys { .. }), "{err:?}");
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("master.key");
    fs::write(&path, format!("{}\n", key_text("k1", 1))).expect("written");
    for loose in [0o644, 0o640, 0o604, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(loose)).expect("chmod");
        let err = load(&VaultConfig::default(), None, &path).unwrap_err();
        assert!(
            matches!(err, VaultError::KeyFileReadable { mode, .. } if mode == loose),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
        assert!(matches!(
            rotate_key_file(&path),
            Err(VaultError::KeyFileReadable { .. })
        ));
    }
}

#[test]
fn starts_at_the_same_moment_agree_on_one_generated_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("master.key");
    let ids: Vec<(String, bool)> = std::thread::scope(|scope| {
        let starts: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let (vault, source) =
                        load(&VaultConfig::default(), None, &path).expect("loads");
                    let KeySource::File { created, .. } = source else {
                        panic!("{source:?}");
                    };
                    (vault.current_key_id().to_owned(), created)
                })
            })
            .collect();
        starts
            .into_iter()
            .map(|s| s.join().expect("no panic"))
            .collect()
    });
    assert!(ids.iter().all(|(id, _)| *id == ids[0].0), "{ids:?}");
    assert_eq!(
        ids.iter().filter(|(_, created)| *created).count(),
        1,
        "{ids:?}"
    );
}

#[test]
fn rotation_puts_a_new_key_first_and_keeps_the_old_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("master.key");
    let (first, _) = load(&VaultConfig::default(), None, &path).expect("generates");
    let sealed = first.seal(CONTEXT, b"secret");

    let new_id = rotate_key_file(&path).expect("rotates");
    assert_ne!(new_id, first.current_key_id());
    assert_eq!(mode(&path), 0o600);
    let (rotated, source) = load(&VaultConfig::default(), None, &path).expect("reads");
    assert_eq!(
        source,
        KeySource::File {
            path: path.clone(),
            created: false
        }
    );
    assert_eq!(rotated.current_key_id(), new_id);
    assert_eq!(
        rotated.key_ids().collect::<Vec<_>>(),
        [new_id.as_str(), first.current_key_id()]
    );
    assert_eq!(
        rotated
            .open_string(CONTEXT, &sealed)
            .expect("opens")
            .expose(),
        "secret"
    );
    assert!(rotated.needs_reseal(&sealed));
    // The header comments stay on top; the new key goes just above the old one.
    let text = fs::read_to_string(&path).expect("readable");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("# Waymark master keys"), "{text}");
    let first_key = lines
        .iter()
        .position(|l| !l.starts_with('#'))
        .expect("a key");
    assert!(
        lines[first_key].starts_with(&format!("{new_id}:")),
        "{text}"
    );
    assert!(lines[first_key + 1].starts_with(&format!("{}:", first.current_key_id())));

    // Again: three keys, no temporary file left behind.
    let third = rotate_key_file(&path).expect("rotates");
    let (vault, _) = load(&VaultConfig::default(), None, &path).expect("reads");
    assert_eq!(vault.key_ids().count(), 3);
    assert_eq!(vault.current_key_id(), third);
    assert_eq!(fs::read_dir(dir.path()).expect("listable").count(), 1);

    // Through a symbolic link, the file it points to is rotated and the link kept.
    let link = dir.path().join("link.key");
    std::os::unix::fs::symlink(&path, &link).expect("linked");
    let fourth = rotate_key_file(&link).expect("rotates");
    assert!(
        fs::symlink_metadata(&link)
            .expect("exists")
            .file_type()
            .is_symlink()
    );
    let (vault, _) = load(&VaultConfig::default(), None, &path).expect("reads");
    assert_eq!(vault.current_key_id(), fourth);
    assert_eq!(vault.key_ids().count(), 4);
    assert_eq!(fs::read_dir(dir.path()).expect("listable").count(), 2);

    let missing = dir.path().join("absent.key");
    assert!(matches!(
        rotate_key_file(&missing),
        Err(VaultError::KeyFileMissing { .. })
    ));
    assert!(!missing.exists());
}
