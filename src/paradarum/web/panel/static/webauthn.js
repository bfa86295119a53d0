// Passkeys in the browser: the server's WebAuthn options (JSON, base64url fields) as the
// objects navigator.credentials takes, and its answer back as JSON for the server.

function toBytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function toBase64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function passkeysSupported() {
  return typeof window.PublicKeyCredential === "function" && !!navigator.credentials;
}

function descriptors(list) {
  return (list || []).map((item) => ({ ...item, id: toBytes(item.id) }));
}

/** navigator.credentials.create() with the server's registration options; JSON back. */
export async function createPasskey(publicKey) {
  const options = {
    ...publicKey,
    challenge: toBytes(publicKey.challenge),
    user: { ...publicKey.user, id: toBytes(publicKey.user.id) },
    excludeCredentials: descriptors(publicKey.excludeCredentials),
  };
  const credential = await navigator.credentials.create({ publicKey: options });
  const response = credential.response;
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
      attestationObject: toBase64url(response.attestationObject),
      transports: typeof response.getTransports === "function" ? response.getTransports() : [],
    },
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

/** navigator.credentials.get() with the server's request options; JSON back. */
export async function usePasskey(publicKey) {
  const options = {
    ...publicKey,
    challenge: toBytes(publicKey.challenge),
    allowCredentials: descriptors(publicKey.allowCredentials),
  };
  const credential = await navigator.credentials.get({ publicKey: options });
  const response = credential.response;
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
      authenticatorData: toBase64url(response.authenticatorData),
      signature: toBase64url(response.signature),
      userHandle: response.userHandle ? toBase64url(response.userHandle) : null,
    },
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

/** What to say when the browser's passkey prompt failed or was dismissed. */
export function passkeyProblem(error) {
  if (error && error.name === "NotAllowedError") {
    return "The passkey prompt was closed or timed out. Try again.";
  }
  if (error && error.name === "InvalidStateError") {
    return "This passkey is registered already.";
  }
  return "Your browser could not use a passkey here.";
}
