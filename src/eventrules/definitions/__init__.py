"""Definition formats, pure: ``files`` (YAML/JSON documents on disk, parsed into workflows and
rules), ``records`` (the config topic's keys, change outcomes, the store protocol),
``signatures`` (Ed25519 signatures of config records) and ``versions`` (high-water marks).

Nothing is re-exported here: ``records`` sits below the engines and ``files`` above them."""
