// Scanning a QR code into a field (a user id to log in with, an identity to
// share with), where the browser has BarcodeDetector and a camera.
import { h } from './dom';

interface Detector {
  detect(source: HTMLVideoElement): Promise<{ rawValue: string }[]>;
}
type DetectorClass = new (options: { formats: string[] }) => Detector;

/** A "Scan a QR code" button for `input`, or null where scanning is not possible. */
export function scanButton(input: HTMLInputElement, what: string): HTMLElement | null {
  const Barcode = (globalThis as { BarcodeDetector?: DetectorClass }).BarcodeDetector;
  if (!Barcode || !navigator.mediaDevices?.getUserMedia) return null;
  const status = h('span', { role: 'status' });
  const video = h('video', { playsinline: true, muted: true, hidden: true, 'aria-label': `camera, to scan ${what}` });
  let stream: MediaStream | null = null;
  let starting = false;
  const stop = () => {
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    video.hidden = true;
  };
  const button = h('button', {
    type: 'button',
    onclick: async () => {
      if (starting) return;
      if (stream) { stop(); status.textContent = ''; return; }
      starting = true;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
        video.srcObject = stream;
        video.hidden = false;
        await video.play();
      } catch {
        stop();
        status.textContent = 'No camera available (or not allowed): paste it instead.';
        return;
      } finally {
        starting = false;
      }
      status.textContent = `Point the camera at the QR code of ${what}.`;
      const detector = new Barcode({ formats: ['qr_code'] });
      // Until found, stopped, or the form leaves the screen (camera off then too).
      while (stream && button.isConnected) {
        const found = await detector.detect(video).catch(() => []);
        const text = found[0]?.rawValue?.trim();
        if (text && text.length === 88) {
          input.value = text;
          input.dispatchEvent(new Event('input'));
          status.textContent = 'Scanned.';
          break;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      stop();
    },
  }, 'Scan a QR code');
  return h('div', { class: 'scan' }, button, status, video);
}
