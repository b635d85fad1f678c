// Prints the X-Twilio-Signature that Twilio's own helper library computes for a request:
//   node twilio-signature.js TOKEN URL PARAMS_JSON_FILE
const fs = require('fs');
const twilio = require('twilio');
const [token, url, file] = process.argv.slice(2);
process.stdout.write(twilio.getExpectedTwilioSignature(token, url, JSON.parse(fs.readFileSync(file, 'utf8'))));
