//! `lameduck webhook copy-binary`: what the injected init container runs to
//! put the static lameduck binary where the app's containers can run it.

use std::fs;
use std::io;
use std::path::Path;

/// Copies the running binary to `dest` (mode 0755), under a temporary name
/// first, so a container never finds half a binary.
pub fn copy_binary(dest: &Path) -> io::Result<u64> {
    let me = std::env::current_exe()?;
    let tmp = dest.with_extension("tmp");
    let copied = fs::copy(&me, &tmp)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    }
    fs::rename(&tmp, dest)?;
    Ok(copied)
}
