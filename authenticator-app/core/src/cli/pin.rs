//! Where the PIN comes from: `--pin-file` (trimmed), else a hidden prompt on
//! the terminal. Without either, commands that need it fail with a sentence
//! saying so.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use zeroize::Zeroizing;

use crate::Pin;

/// The PIN's source.
#[derive(Clone, Debug)]
pub(super) struct PinSource {
    file: Option<PathBuf>,
}

impl PinSource {
    pub(super) fn new(file: Option<PathBuf>) -> Self {
        Self { file }
    }

    /// Whether the PIN is typed on the terminal (rather than read from a file).
    pub(super) fn asks(&self) -> bool {
        self.file.is_none()
    }

    /// The PIN: from the file, else asked with `prompt`.
    pub(super) async fn get(&self, prompt: &str) -> anyhow::Result<Pin> {
        match &self.file {
            Some(file) => read_file(file),
            None => Ok(Pin::new(ask(prompt).await?.as_str())?),
        }
    }

    /// A new PIN (enrollment): from the file, else typed twice.
    pub(super) async fn choose(&self) -> anyhow::Result<Pin> {
        if let Some(file) = &self.file {
            return read_file(file);
        }
        let first = ask("Choose a PIN for this device (4 to 64 characters): ").await?;
        let pin = Pin::new(first.as_str())?;
        if ask("Type it again: ").await?.as_str() != first.as_str() {
            bail!("the two PINs differ");
        }
        Ok(pin)
    }
}

/// Reads and checks the PIN in `file`.
fn read_file(file: &Path) -> anyhow::Result<Pin> {
    let text = Zeroizing::new(
        std::fs::read_to_string(file).with_context(|| format!("cannot read the PIN file {}", file.display()))?,
    );
    Pin::new(text.trim()).with_context(|| format!("the PIN in {}", file.display()))
}

/// Asks on the terminal without echo.
async fn ask(prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        bail!("a PIN is needed: pass --pin-file FILE (or set OUTBAND_DEVICE_PIN_FILE); there is no terminal to ask on");
    }
    let prompt = prompt.to_owned();
    let typed = tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt))
        .await
        .context("asking for the PIN")?
        .context("cannot read the PIN from the terminal")?;
    Ok(Zeroizing::new(typed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_files_are_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("pin");
        std::fs::write(&good, "  2468\n").unwrap();
        assert!(read_file(&good).is_ok());
        let short = dir.path().join("short");
        std::fs::write(&short, "12\n").unwrap();
        let err = read_file(&short).unwrap_err();
        assert!(format!("{err:#}").contains("4 to 64"), "{err:#}");
        let err = read_file(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("cannot read the PIN file"), "{err}");
    }
}
