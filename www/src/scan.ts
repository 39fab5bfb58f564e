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
  const stop = () => {
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    video.hidden = true;
  };
  const button = h('button', {
    type: 'button',
    onclick: async () => {
      if (stream) { stop(); status.textContent = ''; return; }
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
      } catch {
        status.textContent = 'No camera available (or not allowed): paste it instead.';
        return;
      }
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      status.textContent = `Point the camera at the QR code of ${what}.`;
      const detector = new Barcode({ formats: ['qr_code'] });
      while (stream) {
        const found = await detector.detect(video).catch(() => []);
        const text = found[0]?.rawValue?.trim();
        if (text && text.length === 88) {
          input.value = text;
          input.dispatchEvent(new Event('input'));
          status.textContent = 'Scanned.';
          stop();
          break;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  }, 'Scan a QR code');
  return h('div', { class: 'scan' }, button, status, video);
}
