// A password strength hint: an estimate of the guesses needed, from the
// length and the kinds of characters, with the common weaknesses called out.
// Not a policy: Argon2id slows every guess, and the user decides.

export interface Strength {
  /** 0 (very weak) to 4 (strong). */
  score: 0 | 1 | 2 | 3 | 4;
  label: string;
  advice: string;
}

const COMMON = /^(password|passwort|letmein|qwerty|azerty|123456|admin|welcome|iloveyou|monkey|dragon|hypergolix)/i;

export function strength(pw: string): Strength {
  if (pw.length === 0) return { score: 0, label: 'empty', advice: 'Choose a password.' };
  let pool = 0;
  if (/[a-z]/.test(pw)) pool += 26;
  if (/[A-Z]/.test(pw)) pool += 26;
  if (/[0-9]/.test(pw)) pool += 10;
  if (/[^a-zA-Z0-9]/.test(pw)) pool += 33;
  const distinct = new Set(pw).size;
  // Repeats and small alphabets count for less than their length.
  let bits = Math.min(pw.length, distinct * 2) * Math.log2(Math.max(pool, 2));
  if (COMMON.test(pw)) bits = Math.min(bits, 20);
  if (/^(.)\1*$/.test(pw) || /^(0123|1234|abcd)/i.test(pw)) bits = Math.min(bits, 15);
  const score = bits < 28 ? 0 : bits < 40 ? 1 : bits < 55 ? 2 : bits < 70 ? 3 : 4;
  const labels = ['very weak', 'weak', 'fair', 'good', 'strong'] as const;
  const advice = score >= 3
    ? 'Good. Nobody can reset it for you: keep it somewhere safe.'
    : pw.length < 12
      ? 'Longer is stronger: try four or five unrelated words.'
      : 'Mix in unrelated words, digits or symbols.';
  return { score: score as Strength['score'], label: labels[score], advice };
}
