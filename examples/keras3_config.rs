//! Prints the Keras 3 `config.json` for a Keras 2 / tf-keras model config:
//! `keras3_config [FILE]` (stdin without FILE). On a config that cannot be translated
//! exactly, prints why and exits 1.

use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = match args.as_slice() {
        [] => {
            let mut s = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                eprintln!("error: reading stdin: {e}");
                std::process::exit(1);
            }
            s
        }
        [path] => match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: reading {path}: {e}");
                std::process::exit(1);
            }
        },
        _ => {
            eprintln!("usage: keras3_config [MODEL_CONFIG.json]");
            std::process::exit(2);
        }
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: not JSON: {e}");
            std::process::exit(1);
        }
    };
    match ckptconv::keras::config3::from_keras2(&value) {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
