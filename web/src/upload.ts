/**
 * Sends a file's bytes straight to the upload target prepareUpload handed out: resumable with tus
 * when the engine offers a `tusUrl` (a dropped connection picks up where it stopped), else one PUT
 * with XMLHttpRequest, whose upload events give progress. Resolves with the file id that
 * confirmUpload takes.
 */
export interface UploadTarget {
  url: string;
  method: string;
  tusUrl: string | null;
}

export type OnProgress = (sent: number, total: number) => void;

export function uploadFile(file: File, target: UploadTarget, onProgress: OnProgress) {
  return target.tusUrl
    ? uploadWithTus(file, target.tusUrl, onProgress)
    : uploadWithPut(file, target, onProgress);
}

async function uploadWithTus(
  file: File,
  endpoint: string,
  onProgress: OnProgress,
): Promise<string> {
  // Loaded on the first upload, so the page itself starts without it.
  const { Upload } = await import("tus-js-client");
  return new Promise((resolve, reject) => {
    const upload = new Upload(file, {
      endpoint,
      // 8 MiB requests: a dropped connection loses at most one, and progress keeps moving.
      chunkSize: 8 * 1024 * 1024,
      retryDelays: [0, 1_000, 3_000, 5_000, 10_000, 20_000],
      metadata: { filename: file.name, filetype: file.type },
      // Each prepareUpload makes a new episode: an older upload of the same file is not it.
      storeFingerprintForResuming: false,
      onProgress,
      onError: (error) => reject(new Error(`The upload failed: ${error.message}`)),
      onSuccess: () => {
        // The file id is the last path segment of the upload's own URL.
        const id = new URL(upload.url ?? "", window.location.href).pathname.split("/").at(-1);
        if (id) resolve(id);
        else reject(new Error("The upload finished without a file id."));
      },
    });
    upload.start();
  });
}

function uploadWithPut(file: File, target: UploadTarget, onProgress: OnProgress): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(target.method || "PUT", target.url);
    request.responseType = "json";
    request.upload.onprogress = (event) => onProgress(event.loaded, file.size);
    request.onerror = () => reject(new Error("The upload failed: the connection was lost."));
    request.onload = () => {
      const body = request.response as { id?: string; error?: string } | null;
      if (request.status >= 200 && request.status < 300 && body?.id) resolve(body.id);
      else
        reject(
          new Error(`The upload was refused (${request.status}): ${body?.error ?? "no reason"}`),
        );
    };
    request.send(file);
  });
}

/** Bytes per second over the last few seconds, for the "speed" next to the bar. */
export class SpeedMeter {
  private samples: { at: number; bytes: number }[] = [];

  add(bytes: number, at = performance.now()): number {
    this.samples.push({ at, bytes });
    while (this.samples.length > 2 && at - (this.samples[0]?.at ?? at) > 3_000) {
      this.samples.shift();
    }
    const first = this.samples[0];
    if (!first || at === first.at) return 0;
    return ((bytes - first.bytes) * 1000) / (at - first.at);
  }
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 || value >= 100 ? 0 : 1)} ${units[unit]}`;
}
