fn main() {
    let engine = match agentriage::Engine::from_dir("policies/a2a-supply-chain") {
        Ok(e) => e,
        Err(e) => { eprintln!("{e}"); std::process::exit(1) }
    };
    for line in std::io::stdin().lines() {
        let line = line.unwrap_or_default();
        match engine.decide_json(&line) {
            Ok(d) => println!("{}", d.to_json()),
            Err(e) => println!("error: {e}"),
        }
    }
}
